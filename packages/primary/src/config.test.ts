import { isMetasyncError } from '@metasync/shared';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { OPTION_SPECS, loadConfig } from './config.js';

describe('primary config', () => {
  it('reads flags with defaults and env twins, argv winning', () => {
    const loaded = loadConfig(['--data', '/d', '--listen', '127.0.0.1:0', '--journal-keep', '50'], {
      METASYNC_JOURNAL_KEEP: '7',
      METASYNC_SOURCE: '/src',
      METASYNC_PUBLISH_TOKEN: 'a, b',
    });
    expect(loaded.help).toBe(false);
    if (loaded.help) return;
    expect(loaded.config).toMatchObject({
      dataDir: '/d',
      sourceDir: '/src',
      listen: { host: '127.0.0.1', port: 0 },
      journalKeep: 50,
      publishTokens: ['a', 'b'],
      heartbeatMs: 15_000,
    });
    expect(Object.isFrozen(loaded.config)).toBe(true);
  });

  it('reads publish tokens from a file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'metasync-config-'));
    try {
      await writeFile(join(dir, 'token'), 'from-file\n');
      const loaded = loadConfig(['--data', '/d', '--publish-token-file', join(dir, 'token')], {});
      expect(!loaded.help && loaded.config.publishTokens).toEqual(['from-file']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reports every problem in one METASYNC_ERR_CONFIG_INVALID', () => {
    let error: unknown;
    try {
      loadConfig(['--listen', 'nope', '--journal-keep', '0'], { METASYNC_LOG_LEVEL: 'loud' });
    } catch (err) {
      error = err;
    }
    expect(isMetasyncError(error, 'METASYNC_ERR_CONFIG_INVALID')).toBe(true);
    const message = (error as Error).message;
    for (const name of ['--data', '--listen', '--journal-keep', '--log-level']) expect(message).toContain(name);
  });

  it('reads --upstream and its env twin, with the poll interval defaulting to 2 s', () => {
    const loaded = loadConfig(['--data', '/d'], { METASYNC_UPSTREAM: 'https://repo.packagist.org' });
    expect(!loaded.help && loaded.config.upstream).toEqual({
      url: 'https://repo.packagist.org',
      pollMs: 2_000,
      concurrency: 16,
      timeoutMs: 30_000,
    });
    const flagged = loadConfig(['--data', '/d', '--upstream', 'http://127.0.0.1:9/', '--upstream-poll-ms', '500'], {});
    expect(!flagged.help && flagged.config.upstream?.pollMs).toBe(500);
  });

  it('refuses --upstream together with a watched --source, and a non-http upstream', () => {
    expect(() => loadConfig(['--data', '/d', '--source', '/src', '--upstream', 'https://repo.packagist.org'], {})).toThrow(
      /--upstream.*cannot be combined with --source/,
    );
    expect(() => loadConfig(['--data', '/d'], { METASYNC_UPSTREAM: 'file:///etc/passwd' })).toThrow(/--upstream.*http\(s\) URL/);
  });

  it('lists every option and its env twin in --help', () => {
    const loaded = loadConfig(['--help'], {});
    expect(loaded.help).toBe(true);
    if (!loaded.help) return;
    for (const spec of OPTION_SPECS) {
      expect(loaded.helpText).toContain(spec.flag.split(' ')[0]);
      expect(loaded.helpText).toContain(spec.env);
    }
  });

  it('takes an http(s) --dists-url (or METASYNC_DISTS_URL) and refuses anything else', () => {
    const loaded = loadConfig(['--data', '/d'], { METASYNC_DISTS_URL: 'https://repo.example.com' });
    if (loaded.help) throw new Error('unexpected help');
    expect(loaded.config.distsUrl).toBe('https://repo.example.com');
    for (const bad of ['ftp://repo.example.com', 'repo.example.com', 'https://repo.example.com/?x=1']) {
      let caught: unknown;
      try {
        loadConfig(['--data', '/d', '--dists-url', bad], {});
      } catch (err) {
        caught = err;
      }
      expect(isMetasyncError(caught, 'METASYNC_ERR_CONFIG_INVALID'), bad).toBe(true);
    }
  });
});
