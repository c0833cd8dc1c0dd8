import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig as loadMirrorConfig } from '@metasync/mirror';
import { deriveClientToken, CLIENT_TOKEN_MAX_CHARS } from './client-token.js';
import { encodeUserData, renderCloudInit, terraformNodeDefaults, USER_DATA_MAX_BASE64_BYTES, type CloudInitValues } from './user-data.js';

const REPO_ROOT = new URL('../../../../', import.meta.url).pathname;

const values: CloudInitValues = {
  mirror_id: 'eu-west-1-0',
  region: 'eu-west-1',
  primary_url: 'https://primary.repo.example.com',
  primary_key: '0123456789abcdef:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
  mirror_credential: 'msm_' + 'c'.repeat(43),
  release_url: 'https://releases.example.com/metasync-0.1.0.tar.gz',
  release_sha256: createHash('sha256').update('the artifact').digest('hex'),
  node_version: '24.22.3',
  node_sha512: 'b'.repeat(128),
  route53_zone_id: 'Z0123456789',
  service_name: 'repo.example.com',
  acme_email: 'ops@example.com',
};

describe('EC2 user data', () => {
  it('fills every placeholder of the cloud-init template, leaving no ${ behind', () => {
    const template = readFileSync(join(REPO_ROOT, 'infra/templates/cloud-init/mirror.yaml'), 'utf8');
    const placeholders = new Set([...template.matchAll(/\$\{([a-z0-9_]+)\}/g)].map((m) => m[1]!));
    expect([...placeholders].sort()).toEqual(Object.keys(values).sort());
    const rendered = renderCloudInit(values);
    expect(rendered).not.toContain('${');
    expect(rendered.startsWith('#cloud-config\n')).toBe(true);
    for (const value of Object.values(values)) expect(rendered).toContain(value);
  });

  it('installs the release artifact only after its sha256 checks out, and clones or builds nothing', () => {
    const rendered = renderCloudInit(values);
    const runcmd = rendered.slice(rendered.indexOf('runcmd:'));
    const fetch = runcmd.indexOf(`curl -fsSL -o /tmp/metasync.tar.gz "${values.release_url}";`);
    const check = runcmd.indexOf(`echo "${values.release_sha256}  /tmp/metasync.tar.gz" | sha256sum -c -;`);
    const unpack = runcmd.indexOf('tar -xzf /tmp/metasync.tar.gz');
    expect(fetch).toBeGreaterThan(-1);
    expect(check).toBeGreaterThan(fetch);
    expect(unpack).toBeGreaterThan(check);
    // set -e: a failed check stops the step before tar.
    expect(/\[sh, -c, 'set -e; curl -fsSL -o \/tmp\/metasync\.tar\.gz/.test(runcmd)).toBe(true);
    for (const forbidden of ['git clone', 'pnpm', 'npm install', 'run build']) expect(runcmd).not.toContain(forbidden);
  });

  it('writes a mirror env the real mirror config loader accepts, with this mirror id, region, key and primary', () => {
    const rendered = renderCloudInit(values);
    const env = Object.fromEntries(
      [...rendered.matchAll(/^\s*(METASYNC_[A-Z0-9_]+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!] as const),
    ) as NodeJS.ProcessEnv;
    expect(env.METASYNC_MIRROR_ID).toBe(values.mirror_id);
    expect(env.METASYNC_ROUTE53_ZONE_ID).toBe(values.route53_zone_id);
    expect(/path: \/etc\/metasync\/mirror-credential\n(?:.*\n){2}\s*content: (\S+)/.exec(rendered)?.[1]).toBe(values.mirror_credential);
    const loaded = loadMirrorConfig([], {
      ...env,
      // What the credential file and the IMDS step provide on the instance.
      METASYNC_MIRROR_CREDENTIAL: values.mirror_credential,
      METASYNC_MIRROR_CREDENTIAL_FILE: undefined,
      METASYNC_PUBLIC_URL: 'https://198.51.100.7',
      METASYNC_PUBLIC_ADDRESS: '198.51.100.7',
    });
    if (loaded.help) throw new Error('unexpected --help');
    expect(loaded.config.mirrorId).toBe(values.mirror_id);
    expect(loaded.config.region).toBe(values.region);
    expect(loaded.config.primaryKey).toBe(values.primary_key);
  });

  it('stays within the 16 KB EC2 user-data limit in base64, and refuses a larger one', () => {
    const encoded = encodeUserData(renderCloudInit(values));
    expect(encoded.length).toBeLessThanOrEqual(USER_DATA_MAX_BASE64_BYTES);
    expect(Buffer.from(encoded, 'base64').toString('utf8')).toBe(renderCloudInit(values));
    expect(() => encodeUserData('#cloud-config\n' + 'x'.repeat(13_000))).toThrow(/over the 16384-byte limit/);
  });

  it('refuses values that would change the YAML or the shell script, naming them', () => {
    for (const bad of ['', 'a b', "x'; rm -rf /", 'a"b', '$(id)', 'a`b`', 'a\\b', '-leading']) {
      expect(() => renderCloudInit({ ...values, release_url: bad }), JSON.stringify(bad)).toThrow(/release_url=/);
    }
  });

  it('refuses a template that needs a value it is not given', () => {
    expect(() => renderCloudInit(values, 'a: ${mirror_id}\nb: ${new_value}\n')).toThrow(/does not supply/);
  });

  it("takes the Node version and sha512 from the terraform module's defaults, the same as .node-version", () => {
    const node = terraformNodeDefaults();
    expect(node.version).toBe(readFileSync(join(REPO_ROOT, '.node-version'), 'utf8').trim());
    expect(node.sha512).toMatch(/^[0-9a-f]{128}$/);
  });
});

describe('RunInstances client token', () => {
  it('is deterministic per mirror, release and attempt, ASCII and at most 64 characters', () => {
    const token = deriveClientToken({ mirrorId: 'eu-west-1-0', releaseVersion: '0.1.0', attempt: 0 });
    expect(token).toBe(deriveClientToken({ mirrorId: 'eu-west-1-0', releaseVersion: '0.1.0', attempt: 0 }));
    expect(token.length).toBeLessThanOrEqual(CLIENT_TOKEN_MAX_CHARS);
    expect(token).toMatch(/^[\x21-\x7e]+$/);
    const others = [
      deriveClientToken({ mirrorId: 'eu-west-1-1', releaseVersion: '0.1.0', attempt: 0 }),
      deriveClientToken({ mirrorId: 'eu-west-1-0', releaseVersion: '0.1.1', attempt: 0 }),
      deriveClientToken({ mirrorId: 'eu-west-1-0', releaseVersion: '0.1.0', attempt: 1 }),
    ];
    expect(new Set([token, ...others]).size).toBe(4);
  });
});
