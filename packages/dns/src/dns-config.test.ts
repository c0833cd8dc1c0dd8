import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadDnsConfig } from './dns-config.js';

const dir = mkdtempSync(join(tmpdir(), 'metasync-dns-config-'));
const file = (name: string, content: unknown): string => {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
};
const defaultStateFile = '/data/dns-state.json';

describe('loadDnsConfig', () => {
  it("reads only the config file's dns section: the operator's other settings may be invalid or point at missing files", () => {
    const path = file('operator.json', {
      primary: 'ftp://not-http',
      mirrors: { m1: { url: 'nope', region: 'EU' } },
      primaryTokenFile: join(dir, 'absent-token'),
      adminTokenFile: join(dir, 'absent-admin-token'),
      dns: { provider: 'route53', ttlS: 30, route53: { hostedZoneId: 'ZFILE', serviceName: 'repo.example.com' } },
    });
    const config = loadDnsConfig({ env: { METASYNC_CONFIG: path, METASYNC_ROUTE53_ZONE_ID: 'ZENV' }, defaultStateFile });
    expect(config).toEqual({
      dns: {
        provider: 'route53',
        ttlS: 30,
        drainMarginMs: 10_000,
        route53: { hostedZoneId: 'ZENV', serviceName: 'repo.example.com', awsRegion: 'us-east-1' },
      },
      stateFile: defaultStateFile,
    });
    expect(Object.keys(config)).toEqual(['dns', 'stateFile']);
  });

  it('takes everything from env without a file, and METASYNC_DNS_STATE_FILE over the caller default', () => {
    const env = {
      METASYNC_DNS_PROVIDER: 'route53',
      METASYNC_ROUTE53_ZONE_ID: 'Z1',
      METASYNC_ROUTE53_SERVICE_NAME: 'repo.example.com',
      METASYNC_DNS_DRAIN_MARGIN_MS: '200',
    };
    expect(loadDnsConfig({ env, defaultStateFile })).toMatchObject({
      dns: { provider: 'route53', drainMarginMs: 200 },
      stateFile: defaultStateFile,
    });
    expect(loadDnsConfig({ env: { ...env, METASYNC_DNS_STATE_FILE: '/tmp/s.json' }, defaultStateFile }).stateFile).toBe('/tmp/s.json');
    expect(loadDnsConfig({ env: {}, defaultStateFile }).dns.provider).toBe('none');
  });

  it('reports every dns problem in one METASYNC_ERR_CONFIG_INVALID, paths from the file root', () => {
    const path = file('bad.json', { dns: { ttlS: 300, drainMarginMs: -1 } });
    let message = '';
    try {
      loadDnsConfig({ env: { METASYNC_CONFIG: path }, defaultStateFile });
    } catch (err) {
      expect(err).toMatchObject({ code: 'METASYNC_ERR_CONFIG_INVALID' });
      message = (err as Error).message;
    }
    expect(message).toContain('dns.ttlS');
    expect(message).toContain('dns.drainMarginMs');
    expect(() => loadDnsConfig({ env: { METASYNC_CONFIG: join(dir, 'absent.json') }, defaultStateFile })).toThrow(
      /config file .*absent\.json does not exist/,
    );
    expect(() => loadDnsConfig({ env: { METASYNC_DNS_PROVIDER: 'route53' }, defaultStateFile })).toThrow(/dns\.route53 .* is missing/);
  });

  it('takes the PowerDNS API key from env or a file and refuses to go without one', () => {
    const env = {
      METASYNC_DNS_PROVIDER: 'powerdns',
      METASYNC_CONFIG: file('pdns.json', {
        dns: { powerdns: { apiUrl: 'http://127.0.0.1:8081', zone: 'example.test', serviceName: 'repo.example.test' } },
      }),
    };
    expect(
      loadDnsConfig({ env: { ...env, METASYNC_PDNS_API_KEY_FILE: file('key', 'sekrit\n') }, defaultStateFile }).dns.powerdns?.apiKey,
    ).toBe('sekrit');
    expect(() => loadDnsConfig({ env, defaultStateFile })).toThrow(/API key is missing/);
  });
});
