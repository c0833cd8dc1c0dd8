import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';

/** The TLS flags: both halves of the server pair or neither, and a primary CA only for an https primary. */
function problems(argv: string[], env: NodeJS.ProcessEnv = {}): string {
  try {
    loadConfig(['--data', '/tmp/m', '--trust-first-key', ...argv], env);
    return '';
  } catch (err) {
    expect(err).toMatchObject({ code: 'METASYNC_ERR_CONFIG_INVALID' });
    return (err as Error).message;
  }
}

describe('mirror TLS config', () => {
  it('refuses a certificate without its key, and a key without its certificate (env twins too)', () => {
    expect(problems(['--primary', 'https://p.example', '--tls-cert', '/c.pem'])).toContain('--tls-cert needs --tls-key');
    expect(problems(['--primary', 'https://p.example'], { METASYNC_TLS_KEY: '/k.pem' })).toContain('--tls-key needs --tls-cert');
  });

  it('refuses --primary-ca for a plain-HTTP primary, and a CA file that cannot be read', () => {
    expect(problems(['--primary', 'http://p.example', '--primary-ca', '/etc/hostname'])).toContain('needs an https:// --primary');
    expect(problems(['--primary', 'https://p.example', '--primary-ca', '/nonexistent/ca.pem'])).toContain(
      '--primary-ca /nonexistent/ca.pem',
    );
  });

  it('serves plain HTTP without the flags and HTTPS with both', () => {
    const plain = loadConfig(['--data', '/tmp/m', '--trust-first-key', '--primary', 'http://p.example'], {});
    expect(!plain.help && plain.config.tls).toBeUndefined();
    const tls = loadConfig(['--data', '/tmp/m', '--trust-first-key', '--primary', 'http://p.example'], {
      METASYNC_TLS_CERT: '/c.pem',
      METASYNC_TLS_KEY: '/k.pem',
    });
    expect(!tls.help && tls.config.tls).toEqual({ certFile: '/c.pem', keyFile: '/k.pem', reloadIntervalMs: 60_000 });
  });
});
