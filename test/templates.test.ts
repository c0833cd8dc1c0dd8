import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI_ENV } from '../infra/src/cli-config.js';
import { loadConfig as loadMirrorConfig, MIRROR_OPTIONS } from '@metasync/mirror';
import { loadConfig as loadPrimaryConfig, OPTION_SPECS as PRIMARY_OPTIONS } from '@metasync/primary';
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

/** The cloud-init file as Terraform's templatefile() would render it, plus what its IMDS step appends. */
function renderedCloudInitEnv(): NodeJS.ProcessEnv {
  const values: Record<string, string> = {
    primary_url: 'https://primary.repo.example.com',
    primary_key: '0123456789abcdef:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
    region: 'eu-west-1',
    repo_url: 'https://git.example.com/metasync.git',
    route53_zone_id: 'Z0123456789',
    service_name: 'repo.example.com',
  };
  const rendered = read('cloud-init/mirror.yaml').replace(/\$\{([a-z0-9_]+)\}/g, (_, name: string) => values[name] ?? `<unset ${name}>`);
  const env = Object.fromEntries(envLines(rendered, { includeCommented: false }));
  return {
    ...env,
    METASYNC_PUBLIC_URL: 'http://198.51.100.7:8080',
    METASYNC_PUBLIC_ADDRESS: '198.51.100.7',
    METASYNC_MIRROR_ID: 'eu-west-1-ip-10-0-0-7',
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

  it('render a cloud-init env that starts a self-registering Route53 mirror', () => {
    const loaded = loadMirrorConfig([], renderedCloudInitEnv());
    if (loaded.help) throw new Error('unexpected --help');
    expect(loaded.config.dns?.registrar.dns.provider).toBe('route53');
    expect(loaded.config.dns?.address).toBe('198.51.100.7');
    expect(loaded.config.region).toBe('eu-west-1');
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
    for (const name of passed) expect(terraform).toMatch(new RegExp(`variable "${name}"`));
  });

  it('point the systemd units at daemons that exist', () => {
    for (const unit of ['metasync-mirror.service', 'metasync-primary.service']) {
      const execStart = /^ExecStart=\S+ \/opt\/metasync\/(packages\/[a-z]+)\/dist\/main\.js$/m.exec(read(`systemd/${unit}`));
      expect(execStart, unit).not.toBeNull();
      expect(existsSync(join(REPO_ROOT, execStart![1]!, 'src', 'main.ts')), unit).toBe(true);
    }
  });
});
