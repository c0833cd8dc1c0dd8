import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config.js';

function configOf(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const loaded = loadConfig(['--data', '/tmp/metasync-gc-config', ...argv], env);
  if (loaded.help) throw new Error('unexpected --help');
  return loaded.config;
}

describe('object GC options', () => {
  it('default to a one-hour grace and a one-minute interval', () => {
    expect(configOf([]).objectGc).toEqual({ graceMs: 3_600_000, intervalMs: 60_000 });
  });

  it('read the METASYNC_* twins, and the flags win over them', () => {
    const env = { METASYNC_OBJECT_GC_GRACE_MS: '600000', METASYNC_OBJECT_GC_INTERVAL_MS: '0' };
    expect(configOf([], env).objectGc).toEqual({ graceMs: 600_000, intervalMs: 0 });
    expect(configOf(['--object-gc-grace-ms', '5000'], env).objectGc).toEqual({ graceMs: 5_000, intervalMs: 0 });
  });

  it('reject a negative or non-numeric value, naming the option', () => {
    expect(() => configOf(['--object-gc-interval-ms', '-1'])).toThrow(/object-gc-interval-ms/);
    expect(() => configOf(['--object-gc-grace-ms', '1h'])).toThrow(/object-gc-grace-ms/);
  });

  it('are listed by --help', () => {
    const loaded = loadConfig(['--help'], {});
    expect(loaded.help && loaded.helpText).toMatch(/--object-gc-grace-ms[\s\S]*--object-gc-interval-ms/);
  });
});
