import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCliConfig } from './cli-config.js';
import { resolveMirror } from './commands/context.js';

const dir = mkdtempSync(join(tmpdir(), 'metasync-cli-config-'));
const file = (name: string, content: unknown): string => {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
};

describe('CLI config', () => {
  it('reads the file, lets METASYNC_* env override it and --primary override both', () => {
    const path = file('a.json', {
      primary: 'http://file.example:8080',
      dns: { provider: 'route53', route53: { hostedZoneId: 'ZFILE', serviceName: 'repo.example.com' } },
      mirrors: { m1: { url: 'http://192.0.2.1:8081', region: 'eu-west-1' } },
    });
    const config = loadCliConfig({
      env: { METASYNC_CONFIG: path, METASYNC_ROUTE53_ZONE_ID: 'ZENV', METASYNC_DNS_STATE_FILE: '/tmp/s.json' },
    });
    expect(config.primary).toBe('http://file.example:8080');
    expect(config.dns.route53).toMatchObject({ hostedZoneId: 'ZENV', serviceName: 'repo.example.com', awsRegion: 'us-east-1' });
    expect(config.dns.ttlS).toBe(60);
    expect(config.stateFile).toBe('/tmp/s.json');
    expect(
      loadCliConfig({ configPath: path, primary: 'http://flag.example', env: { METASYNC_PRIMARY: 'http://env.example' } }).primary,
    ).toBe('http://flag.example');
    expect(loadCliConfig({ configPath: path, env: { METASYNC_PRIMARY: 'http://env.example' } }).primary).toBe('http://env.example');
  });

  it('reports every problem in one METASYNC_ERR_CONFIG_INVALID', () => {
    const path = file('b.json', { primary: 'ftp://x', dns: { ttlS: 300 }, mirrors: { m1: { url: 'nope', region: 'EU' } } });
    let message = '';
    try {
      loadCliConfig({ configPath: path, env: {} });
    } catch (err) {
      expect(err).toMatchObject({ code: 'METASYNC_ERR_CONFIG_INVALID' });
      message = (err as Error).message;
    }
    expect(message).toContain('primary: must be an http(s) URL');
    expect(message).toContain('dns.ttlS');
    expect(message).toContain('mirrors.m1.url');
    expect(message).toContain('mirrors.m1.region');
  });

  it('names a missing or broken file and a provider without its section', () => {
    expect(() => loadCliConfig({ configPath: join(dir, 'absent.json'), env: {} })).toThrow(/config file .*absent\.json does not exist/);
    expect(() => loadCliConfig({ configPath: file('c.json', '{'), env: {} })).toThrow(/is not valid JSON/);
    expect(() => loadCliConfig({ env: { METASYNC_DNS_PROVIDER: 'route53' } })).toThrow(/dns\.route53 .* is missing/);
    expect(() => loadCliConfig({ env: { METASYNC_DNS_PROVIDER: 'powerdns', METASYNC_PDNS_API_URL: 'http://127.0.0.1:1' } })).toThrow(
      /dns.powerdns/,
    );
  });

  it('takes the PowerDNS API key from env or a file, never requiring it on the command line', () => {
    const keyFile = file('key', 'sekrit\n');
    const path = file('d.json', {
      dns: { provider: 'powerdns', powerdns: { apiUrl: 'http://127.0.0.1:8081', zone: 'example.test', serviceName: 'repo.example.test' } },
    });
    expect(loadCliConfig({ configPath: path, env: { METASYNC_PDNS_API_KEY_FILE: keyFile } }).dns.powerdns?.apiKey).toBe('sekrit');
    expect(() => loadCliConfig({ configPath: path, env: {} })).toThrow(/API key is missing/);
  });

  it('takes the primary admin token for keys rotate from env, else from the file the config names', () => {
    const tokenFile = file('primary-token', 'from-file\n');
    const path = file('e.json', { primaryTokenFile: tokenFile });
    expect(loadCliConfig({ configPath: path, env: {} }).primaryToken).toBe('from-file');
    expect(loadCliConfig({ configPath: path, env: { METASYNC_PRIMARY_TOKEN: 'from-env' } }).primaryToken).toBe('from-env');
    expect(loadCliConfig({ env: {} }).primaryToken).toBeUndefined();
  });

  it('resolves a mirror: the URL host is the DNS address when it is an IP, flags override the file', () => {
    const config = loadCliConfig({
      configPath: file('e.json', {
        mirrors: {
          m1: { url: 'http://192.0.2.1:8081', region: 'eu-west-1' },
          named: { url: 'https://m.example.net', region: 'us-east-1' },
        },
      }),
      env: {},
    });
    expect(resolveMirror(config, 'm1', {})).toMatchObject({
      address: '192.0.2.1',
      healthUrl: 'http://192.0.2.1:8081/health/fresh',
      region: 'eu-west-1',
    });
    expect(resolveMirror(config, 'm1', { region: 'eu-central-1', url: undefined })).toMatchObject({
      region: 'eu-central-1',
      url: 'http://192.0.2.1:8081',
    });
    expect(() => resolveMirror(config, 'named', {})).toThrow(/pass --address/);
    expect(() => resolveMirror(config, 'ghost', {})).toThrow(/not in the config file/);
  });
});
