import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';

const base = ['--primary', 'http://127.0.0.1:9', '--data', '/tmp/metasync-config-dns', '--trust-first-key'];
const route53Env = { METASYNC_DNS_PROVIDER: 'route53', METASYNC_ROUTE53_ZONE_ID: 'Z1', METASYNC_ROUTE53_SERVICE_NAME: 'repo.example.com' };

describe('mirror config: admin token and DNS self-registration', () => {
  it('is off by default: no admin token, no DNS', () => {
    const loaded = loadConfig(base, {});
    if (loaded.help) throw new Error('unexpected help');
    expect(loaded.config.adminToken).toBeUndefined();
    expect(loaded.config.dns).toBeUndefined();
  });

  it('reads the DNS settings from the same env names as the metasync CLI, with the state file in the data dir', () => {
    const loaded = loadConfig([...base, '--listen', '127.0.0.1:0', '--dns-self-register'], {
      ...route53Env,
      METASYNC_DNS_TTL_S: '5',
      METASYNC_ADMIN_TOKEN: 't',
    });
    if (loaded.help) throw new Error('unexpected help');
    expect(loaded.config.adminToken).toBe('t');
    expect(loaded.config.dns?.address).toBe('127.0.0.1');
    expect(loaded.config.dns?.registrar.dns).toMatchObject({
      provider: 'route53',
      ttlS: 5,
      route53: { hostedZoneId: 'Z1', serviceName: 'repo.example.com' },
    });
    expect(loaded.config.dns?.registrar.stateFile).toBe('/tmp/metasync-config-dns/dns-state.json');
  });

  it('reports a missing provider and an unusable address in one error', () => {
    expect(() => loadConfig([...base, '--listen', '0.0.0.0:8080', '--dns-self-register'], {})).toThrow(
      /METASYNC_DNS_PROVIDER[\s\S]*--public-address/,
    );
    const loaded = loadConfig([...base, '--listen', '0.0.0.0:8080', '--public-address', '203.0.113.5'], {
      ...route53Env,
      METASYNC_DNS_SELF_REGISTER: 'true',
    });
    if (loaded.help) throw new Error('unexpected help');
    expect(loaded.config.dns?.address).toBe('203.0.113.5');
  });

  it('lists the new flags and the DNS env names in --help', () => {
    const loaded = loadConfig(['--help'], {});
    if (!loaded.help) throw new Error('expected help');
    for (const name of [
      'METASYNC_ADMIN_TOKEN_FILE',
      'METASYNC_DNS_SELF_REGISTER',
      'METASYNC_PUBLIC_ADDRESS',
      'METASYNC_ROUTE53_ZONE_ID',
      'METASYNC_PDNS_API_URL',
    ]) {
      expect(loaded.helpText).toContain(name);
    }
  });
});
