import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { completeDnsConfig, DNS_ENV, dnsSectionSchema, mergeDnsEnv, readConfigFile } from '@metasync/dns';
import { metasyncError } from '@metasync/shared';
import { readSecret } from '@metasync/shared/daemon';
import { launchSectionSchema } from './launch/launch-config.js';

/**
 * The operator CLI's config: a JSON file (`--config` / METASYNC_CONFIG) plus
 * METASYNC_* environment overrides. Its `dns` section, and the registrar's
 * reading of it, belong to @metasync/dns (packages/dns/src/dns-config.ts).
 */
const httpUrl = z.string().refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol), 'must be an http(s) URL');

const mirrorSchema = z.object({
  /** Base URL the CLI reaches the mirror on. */
  url: httpUrl,
  region: z.string().regex(/^[a-z0-9-]{1,32}$/, 'must be 1-32 of [a-z0-9-]'),
  /** The address DNS answers carry (default: the URL's host when it is an IP). */
  address: z.string().optional(),
  /** What DNS health checks fetch (default: `<url>/health/fresh`). */
  healthUrl: httpUrl.optional(),
  /** Shell command that stops the mirror (systemctl stop ..., or a kill in tests). */
  stopCommand: z.string().optional(),
  /** Local data dir, for `verify` to hash the objects on disk. */
  dataDir: z.string().optional(),
  /** Set for a mirror a launcher created (`mirror up --launch`): `mirror retire` destroys its server through it. */
  launcher: z.enum(['aws', 'local']).optional(),
});
export type MirrorConfig = z.infer<typeof mirrorSchema>;

const fileSchema = z.object({
  primary: httpUrl.optional(),
  dns: dnsSectionSchema,
  mirrors: z.record(z.string(), mirrorSchema).default({}),
  /** `mirror up --launch <kind>`, `mirrors roll`: how each launcher creates servers (infra/src/launch/launch-config.ts). */
  launch: launchSectionSchema,
  /** File holding the mirrors' admin token (for `mirror retire`'s POST /admin/drain). */
  adminTokenFile: z.string().optional(),
  /** File holding a primary token with admin rights (for `keys rotate`'s POST /admin/keys/rotate). */
  primaryTokenFile: z.string().optional(),
  /** PEM CA certificate(s) trusted, besides the system's, for https:// primaries and mirrors (a private CA). */
  caFile: z.string().optional(),
});
export type CliConfig = z.infer<typeof fileSchema> & {
  stateFile: string;
  /** The local launcher's directory (launch.local.dir / METASYNC_LAUNCH_LOCAL_DIR, else under the state dir). */
  launchLocalDir: string;
  /** Bearer token for the mirrors' POST /admin/drain; undefined = `mirror retire` does not call it. */
  adminToken?: string | undefined;
  /** Bearer token with admin rights on the primary; undefined = `keys rotate`, `mirror retire` and enrolling refuse to run. */
  primaryToken?: string | undefined;
  /** `caFile` / METASYNC_CA_FILE / --ca, read: added to the system CAs for every request the CLI makes. */
  ca?: Buffer | undefined;
};

/** Environment twins of the config file's fields (env wins over the file). */
export const CLI_ENV = {
  METASYNC_CONFIG: 'path of the JSON config file',
  METASYNC_PRIMARY: 'primary base URL (primary)',
  ...DNS_ENV,
  METASYNC_DNS_STATE_FILE: 'local DNS state file (default ~/.local/state/metasync/dns-state.json)',
  METASYNC_ADMIN_TOKEN: "mirrors' admin token: mirror retire then POSTs /admin/drain (secret; or METASYNC_ADMIN_TOKEN_FILE)",
  METASYNC_ADMIN_TOKEN_FILE: "file holding the mirrors' admin token (adminTokenFile)",
  METASYNC_PRIMARY_TOKEN:
    'a primary token with admin rights, for keys rotate and mirror enrollment (secret; or METASYNC_PRIMARY_TOKEN_FILE)',
  METASYNC_PRIMARY_TOKEN_FILE: 'file holding that primary token (primaryTokenFile)',
  METASYNC_CA_FILE: 'PEM CA certificate(s) trusted besides the system CAs for https:// primaries and mirrors (caFile; or --ca)',
  METASYNC_LAUNCH_LOCAL_DIR: "the local launcher's directory, one subdirectory per mirror (launch.local.dir)",
} as const;

/** Pure apart from reading the named files: file, then env, then flags. */
export function loadCliConfig(input: {
  configPath?: string | undefined;
  primary?: string | undefined;
  caFile?: string | undefined;
  env: NodeJS.ProcessEnv;
}): CliConfig {
  const env = input.env;
  const raw = readConfigFile(input.configPath ?? env.METASYNC_CONFIG) as Record<string, unknown>;
  const merged = structuredClone(raw);
  merged.dns = mergeDnsEnv(merged.dns, env);
  const primary = input.primary ?? env.METASYNC_PRIMARY;
  if (primary !== undefined && primary !== '') merged.primary = primary;
  const parsed = fileSchema.safeParse(merged);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`).join('; ');
    throw metasyncError('METASYNC_ERR_CONFIG_INVALID', `metasync config: ${problems}`, {});
  }
  const stateHome = env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state');
  const { dns, stateFile } = completeDnsConfig(parsed.data.dns, env, {
    defaultStateFile: parsed.data.dns.route53?.stateFile ?? join(stateHome, 'metasync', 'dns-state.json'),
  });
  const adminToken = readSecret(
    env.METASYNC_ADMIN_TOKEN,
    env.METASYNC_ADMIN_TOKEN_FILE ?? parsed.data.adminTokenFile,
    env.METASYNC_ADMIN_TOKEN_FILE === undefined ? 'metasync config: adminTokenFile' : 'METASYNC_ADMIN_TOKEN_FILE',
  );
  const primaryToken = readSecret(
    env.METASYNC_PRIMARY_TOKEN,
    env.METASYNC_PRIMARY_TOKEN_FILE ?? parsed.data.primaryTokenFile,
    env.METASYNC_PRIMARY_TOKEN_FILE === undefined ? 'metasync config: primaryTokenFile' : 'METASYNC_PRIMARY_TOKEN_FILE',
  );
  const caFile = input.caFile ?? env.METASYNC_CA_FILE ?? parsed.data.caFile;
  const launchLocalDir = env.METASYNC_LAUNCH_LOCAL_DIR ?? parsed.data.launch.local.dir ?? join(stateHome, 'metasync', 'launch-local');
  return {
    ...parsed.data,
    launchLocalDir,
    dns,
    stateFile,
    adminToken,
    primaryToken,
    ca: caFile === undefined || caFile === '' ? undefined : readCa(caFile),
  };
}

function readCa(file: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
    new X509Certificate(pem);
  } catch (err) {
    throw metasyncError(
      'METASYNC_ERR_CONFIG_INVALID',
      `metasync config: CA file ${file} is not a readable PEM certificate: ${(err as Error).message}`,
      {
        path: file,
      },
    );
  }
  return pem;
}
