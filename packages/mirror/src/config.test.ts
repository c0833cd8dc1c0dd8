import { describe, expect, it } from 'vitest';
import { loadConfig, MIRROR_OPTIONS } from './config.js';

describe('mirror config', () => {
  it('starts from --primary and --data alone with documented defaults', () => {
    const loaded = loadConfig(['--primary', 'http://127.0.0.1:8080', '--data', '/tmp/m'], {});
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
});
