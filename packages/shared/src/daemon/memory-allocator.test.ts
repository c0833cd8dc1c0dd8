import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { allocatorOfMaps, memoryAllocator } from './memory-allocator.js';

/** The memory map of a real Node process started with `env`, read while it runs. */
async function mapsOfNode(env: NodeJS.ProcessEnv): Promise<string> {
  const child = spawn(process.execPath, ['-e', 'process.stdout.write("up\\n"); setTimeout(() => {}, 10_000)'], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  try {
    await new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`node exited (${code}) before it was up`)));
      child.stdout.once('data', () => resolve());
    });
    return readFileSync(`/proc/${child.pid}/maps`, 'utf8');
  } finally {
    child.kill('SIGKILL');
  }
}

describe('memoryAllocator', () => {
  it('names jemalloc in a process started as the systemd units start the daemons', async () => {
    // The units' LD_PRELOAD (infra/templates/systemd); scripts/setup.sh and cloud-init install libjemalloc2.
    expect(allocatorOfMaps(await mapsOfNode({ LD_PRELOAD: 'libjemalloc.so.2' }))).toBe('jemalloc');
  });

  it('names glibc in a process started without a preload, and in this one', async () => {
    expect(allocatorOfMaps(await mapsOfNode({}))).toBe('glibc');
    expect(['glibc', 'jemalloc']).toContain(memoryAllocator());
  });

  it('answers unknown for a map with neither', () => {
    expect(allocatorOfMaps('00400000-00452000 r-xp 00000000 08:02 173521 /usr/bin/node\n')).toBe('unknown');
  });
});
