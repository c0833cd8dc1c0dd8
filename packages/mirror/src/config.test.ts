import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { keyIdOf } from '@metasync/shared';
import { loadConfig, MIRROR_OPTIONS } from './config.js';
import { resolveWorkerCount } from './workers/worker-count.js';

const MINIMAL = ['--primary', 'http://127.0.0.1:8080', '--data', '/tmp/m'];

/** A well-formed `--primary-key` value for a fresh Ed25519 key. */
function pinValue(): string {
  const jwk = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' });
  return `${keyIdOf(jwk.x!)}:${jwk.x!}`;
}

function thrown(fn: () => unknown): { code?: string; message: string } {
  try {
    fn();
  } catch (err) {
    return err as { code?: string; message: string };
  }
  throw new Error('expected a throw');
}

describe('mirror config', () => {
  it('takes --workers as a count or auto (default 1), refusing 0, over 64 and words', () => {
    const workers = (args: string[], env: NodeJS.ProcessEnv = {}): unknown => {
      const loaded = loadConfig([...MINIMAL, '--trust-first-key', ...args], env);
      if (loaded.help) throw new Error('unexpected help');
      return loaded.config.workers;
    };
    expect(workers([])).toBe(1);
    expect(workers(['--workers', '4'])).toBe(4);
    expect(workers([], { METASYNC_WORKERS: 'auto' })).toBe('auto');
    for (const bad of ['0', '65', 'many', '1.5']) {
      const err = thrown(() => workers(['--workers', bad]));
      expect(err.code).toBe('METASYNC_ERR_CONFIG_INVALID');
      expect(err.message).toContain('--workers');
    }
    expect(resolveWorkerCount('auto', () => 6)).toBe(6);
    expect(resolveWorkerCount('auto', () => 512)).toBe(64);
    expect(resolveWorkerCount(3, () => 6)).toBe(3);
  });

  it('starts from --primary and --data alone with documented defaults', () => {
    const loaded = loadConfig([...MINIMAL, '--trust-first-key'], {});
    if (loaded.help) throw new Error('unexpected help');
    expect(loaded.config).toMatchObject({ region: 'local', gcGraceMs: 600_000, listen: { host: '127.0.0.1', port: 8081 } });
    expect(Object.isFrozen(loaded.config)).toBe(true);
  });

  it('reads every option from its METASYNC_* twin, argv winning', () => {
    const loaded = loadConfig(['--region', 'eu-west'], {
      METASYNC_PRIMARY: 'http://p:1',
      METASYNC_DATA: '/d',
      METASYNC_REGION: 'us-east',
      METASYNC_MAX_LAG_SEQ: '3',
      METASYNC_TRUST_FIRST_KEY: '1',
    });
    if (loaded.help) throw new Error('unexpected help');
    expect(loaded.config).toMatchObject({ primary: 'http://p:1', data: '/d', region: 'eu-west', maxLagSeq: 3 });
    for (const spec of MIRROR_OPTIONS) expect(spec.env).toMatch(/^METASYNC_[A-Z0-9_]+$/);
  });

  it('reports every problem in one METASYNC_ERR_CONFIG_INVALID', () => {
    let message = '';
    try {
      loadConfig(['--primary', 'ftp://x', '--listen', 'nope', '--fetch-concurrency', '0'], {});
    } catch (err) {
      expect(err).toMatchObject({ code: 'METASYNC_ERR_CONFIG_INVALID' });
      message = (err as Error).message;
    }
    for (const flag of ['--primary', '--data', '--listen', '--fetch-concurrency']) expect(message).toContain(flag);
  });

  it('lists every option in --help', () => {
    const loaded = loadConfig(['--help'], {});
    if (!loaded.help) throw new Error('expected help');
    for (const spec of MIRROR_OPTIONS) expect(loaded.helpText).toContain(spec.flag.split(' ')[0]);
  });

  it('refuses to start without a pinned primary key, naming the flag, unless --trust-first-key', () => {
    const err = thrown(() => loadConfig(MINIMAL, {}));
    expect(err.code).toBe('METASYNC_ERR_CONFIG_KEY_UNPINNED');
    expect(err.message).toContain('--primary-key');
    expect(err.message).toContain('--primary-key-file');
    expect(err.message).toContain('--trust-first-key');
    const trusting = loadConfig([...MINIMAL, '--trust-first-key'], {});
    expect(trusting.help === false && trusting.config.primaryKey).toBeUndefined();
  });

  it('pins the key from --primary-key, --primary-key-file or their env twins, and refuses a doubled or unreadable pin', () => {
    const dir = mkdtempSync(join(tmpdir(), 'metasync-mirror-config-'));
    try {
      const pin = pinValue();
      const file = join(dir, 'primary-key');
      writeFileSync(file, `${pin}\n`);
      for (const loaded of [
        loadConfig([...MINIMAL, '--primary-key', pin], {}),
        loadConfig([...MINIMAL, '--primary-key-file', file], {}),
        loadConfig(MINIMAL, { METASYNC_PRIMARY_KEY_FILE: file }),
        loadConfig(MINIMAL, { METASYNC_PRIMARY_KEY: pin }),
      ]) {
        expect(loaded.help === false && loaded.config.primaryKey).toBe(pin);
      }
      expect(thrown(() => loadConfig([...MINIMAL, '--primary-key', pin, '--primary-key-file', file], {})).message).toContain('give one');
      const missing = thrown(() => loadConfig([...MINIMAL, '--primary-key-file', join(dir, 'absent')], {}));
      expect(missing.code).toBe('METASYNC_ERR_CONFIG_INVALID');
      expect(missing.message).toContain('--primary-key-file');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads the mirror credential from --mirror-credential-file (trimmed) or METASYNC_MIRROR_CREDENTIAL', () => {
    const dir = mkdtempSync(join(tmpdir(), 'metasync-mirror-config-'));
    try {
      const file = join(dir, 'credential');
      writeFileSync(file, 'msm_secret\n');
      const fromFile = loadConfig([...MINIMAL, '--trust-first-key', '--mirror-credential-file', file], {});
      expect(fromFile.help === false && fromFile.config.mirrorCredential).toBe('msm_secret');
      const fromEnv = loadConfig([...MINIMAL, '--trust-first-key'], { METASYNC_MIRROR_CREDENTIAL: 'msm_env' });
      expect(fromEnv.help === false && fromEnv.config.mirrorCredential).toBe('msm_env');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads the dist options, allowlist split and lower-cased, and refuses an archive cap over the cache budget', () => {
    const loaded = loadConfig([...MINIMAL, '--trust-first-key', '--dist-allow-hosts', 'GitHub.com, git.internal'], {
      METASYNC_DIST_ALLOW_PRIVATE: '1',
    });
    if (loaded.help) throw new Error('unexpected help');
    expect(loaded.config).toMatchObject({
      distAllowHosts: ['github.com', 'git.internal'],
      distAllowPrivate: true,
      distCacheBytes: 10 * 1024 ** 3,
    });
    const err = thrown(() => loadConfig([...MINIMAL, '--trust-first-key', '--dist-cache-bytes', '1000', '--dist-max-bytes', '2000'], {}));
    expect(err.code).toBe('METASYNC_ERR_CONFIG_INVALID');
    expect(err.message).toContain('--dist-max-bytes');
  });
});
