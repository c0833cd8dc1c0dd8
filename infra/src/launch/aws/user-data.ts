import { readFileSync } from 'node:fs';
import { metasyncError } from '@metasync/shared';

/**
 * The EC2 user data of a mirror: infra/templates/cloud-init/mirror.yaml with
 * its `${name}` placeholders filled, exactly as Terraform's templatefile()
 * fills them for the terraform module, so both paths boot the same server
 * (the release artifact, its sha256 checked; nothing cloned or built).
 */
const TEMPLATE_URL = new URL('../../../templates/cloud-init/mirror.yaml', import.meta.url);
const TERRAFORM_URL = new URL('../../../templates/terraform/region/main.tf', import.meta.url);

/** EC2 refuses user data above 16 KB; we hold the base64 form to it, the stricter reading. */
export const USER_DATA_MAX_BASE64_BYTES = 16 * 1024;

export interface CloudInitValues {
  mirror_id: string;
  region: string;
  primary_url: string;
  primary_key: string;
  mirror_credential: string;
  release_url: string;
  release_sha256: string;
  node_version: string;
  node_sha512: string;
  route53_zone_id: string;
  service_name: string;
  acme_email: string;
}

/**
 * Values land inside YAML scalars and single-quoted `sh -c` strings: a quote,
 * `$`, backslash, backtick or whitespace would change the script, so any is
 * refused rather than escaped (none occurs in a valid id, URL, key or hash).
 */
const SAFE_VALUE = /^[A-Za-z0-9][^\s'"`$\\]*$/;

export function renderCloudInit(values: CloudInitValues, template: string = readFileSync(TEMPLATE_URL, 'utf8')): string {
  const problems = Object.entries(values)
    .filter(([, value]) => !SAFE_VALUE.test(value))
    .map(([name, value]) => `${name}=${JSON.stringify(value)}`);
  if (problems.length > 0) {
    throw metasyncError(
      'METASYNC_ERR_CONFIG_INVALID',
      `cloud-init values must be non-empty, start with a letter or digit and hold no whitespace, quotes, $, \\ or backticks: ${problems.join(', ')}`,
      { names: problems },
    );
  }
  const known = values as unknown as Record<string, string>;
  const unknown = new Set<string>();
  const rendered = template.replace(/\$\{([a-z0-9_]+)\}/g, (_, name: string) => {
    const value = known[name];
    if (value === undefined) unknown.add(name);
    return value ?? '';
  });
  if (unknown.size > 0 || rendered.includes('${')) {
    throw metasyncError(
      'METASYNC_ERR_CONFIG_INVALID',
      `cloud-init template ${TEMPLATE_URL.pathname} uses values the launcher does not supply`,
      {
        names: [...unknown],
      },
    );
  }
  return rendered;
}

/** RunInstances' UserData: the rendered template, base64, checked against EC2's limit before anything is created. */
export function encodeUserData(rendered: string): string {
  const encoded = Buffer.from(rendered, 'utf8').toString('base64');
  if (encoded.length > USER_DATA_MAX_BASE64_BYTES) {
    throw metasyncError(
      'METASYNC_ERR_CONFIG_INVALID',
      `EC2 user data is ${encoded.length} bytes base64, over the ${USER_DATA_MAX_BASE64_BYTES}-byte limit`,
      { bytes: encoded.length, maxBytes: USER_DATA_MAX_BASE64_BYTES },
    );
  }
  return encoded;
}

/**
 * The Node the terraform module installs (its node_version / node_sha512
 * defaults), so the two launch paths cannot drift apart; `launch.aws.node`
 * overrides it.
 */
export function terraformNodeDefaults(terraform: string = readFileSync(TERRAFORM_URL, 'utf8')): { version: string; sha512: string } {
  const version = /variable "node_version" \{[^}]*?default\s*=\s*"([^"]+)"/s.exec(terraform)?.[1];
  const sha512 = /variable "node_sha512" \{[^}]*?default\s*=\s*"([^"]+)"/s.exec(terraform)?.[1];
  if (version === undefined || sha512 === undefined) {
    throw metasyncError(
      'METASYNC_ERR_CONFIG_INVALID',
      `no node_version/node_sha512 defaults in ${TERRAFORM_URL.pathname}; set launch.aws.node { version, sha512 }`,
      { path: TERRAFORM_URL.pathname },
    );
  }
  return { version, sha512 };
}
