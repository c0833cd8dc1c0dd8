import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { startDaemon, type Daemon } from './daemon.js';

/**
 * Real processes for the mirror's end-to-end scenarios: the built primary and
 * mirror bins, each with its own temp data dir, and small clients for the
 * publish API and for checking a response against its ETag.
 */
export const PUBLISH_TOKEN = 'mirror-e2e-token';

export interface RunningPrimary extends Daemon {
  dataDir: string;
  /** `--primary-key` value pinning this primary's key. */
  keyArg: string;
  /** Issues a credential for a mirror id through the admin API (PUBLISH_TOKEN is an admin token). */
  enroll(mirrorId: string): Promise<string>;
}

/**
 * Primaries started here, by their `--primary-key` value: `startMirror` enrolls
 * its mirror with the primary it is pinned to, so scenarios that reach the
 * primary through a proxy still enroll on the primary itself.
 */
const primariesByKey = new Map<string, RunningPrimary>();

export interface RunningMirror extends Daemon {
  dataDir: string;
}

const tempDirs: string[] = [];

export async function makeTempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

export async function removeTempDirs(): Promise<void> {
  for (const dir of tempDirs.splice(0)) await rm(dir, { recursive: true, force: true });
}

export async function startPrimary(
  options: { dataDir?: string; listen?: string; args?: string[]; readyTimeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<RunningPrimary> {
  const dataDir = options.dataDir ?? (await makeTempDir('e2e-primary-'));
  const daemon = await startDaemon({
    bin: 'primary',
    args: ['--data', dataDir, '--listen', options.listen ?? '127.0.0.1:0', '--publish-token', PUBLISH_TOKEN, ...(options.args ?? [])],
    ...(options.readyTimeoutMs === undefined ? {} : { readyTimeoutMs: options.readyTimeoutMs }),
    ...(options.env === undefined ? {} : { env: options.env }),
  });
  const state = (await (await fetch(`${daemon.url}/sync/v1/state`)).json()) as { keys: { keyId: string; publicKey: string }[] };
  const key = state.keys[0]!;
  const enroll = async (mirrorId: string): Promise<string> => {
    const response = await fetch(`${daemon.url}/admin/mirrors/${mirrorId}/credential`, {
      method: 'POST',
      headers: { authorization: `Bearer ${PUBLISH_TOKEN}` },
      signal: AbortSignal.timeout(10_000),
    });
    if (!response.ok) throw new Error(`enrolling ${mirrorId} answered ${response.status}: ${await response.text()}`);
    return ((await response.json()) as { credential: string }).credential;
  };
  const running = Object.assign(daemon, { dataDir, keyArg: `${key.keyId}:${key.publicKey}`, enroll });
  primariesByKey.set(running.keyArg, running);
  return running;
}

/** The `--mirror-id` in `args`, else a new one (so the helper knows whom it enrolls). */
function mirrorIdIn(args: readonly string[]): { mirrorId: string; args: string[] } {
  const at = args.indexOf('--mirror-id');
  if (at !== -1 && args[at + 1] !== undefined) return { mirrorId: args[at + 1]!, args: [...args] };
  const mirrorId = `e2e-${randomBytes(4).toString('hex')}`;
  return { mirrorId, args: ['--mirror-id', mirrorId, ...args] };
}

export async function startMirror(options: {
  primaryUrl: string;
  keyArg?: string;
  dataDir?: string;
  args?: string[];
  readyTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}): Promise<RunningMirror> {
  const dataDir = options.dataDir ?? (await makeTempDir('e2e-mirror-'));
  // A restart on the same data dir keeps the mirror id the data dir holds, unless the args name one.
  const restarted = options.dataDir !== undefined && !(options.args ?? []).includes('--mirror-id');
  const storedId = restarted
    ? await readFile(join(dataDir, 'mirror-id'), 'utf8').then(
        (t) => t.trim(),
        () => undefined,
      )
    : undefined;
  const named =
    storedId === undefined
      ? mirrorIdIn(options.args ?? [])
      : { mirrorId: storedId, args: ['--mirror-id', storedId, ...(options.args ?? [])] };
  const primary = options.keyArg === undefined ? undefined : primariesByKey.get(options.keyArg);
  const credential = primary === undefined ? undefined : await primary.enroll(named.mirrorId);
  const daemon = await startDaemon({
    bin: 'mirror',
    args: [
      '--primary',
      options.primaryUrl,
      '--data',
      dataDir,
      '--listen',
      '127.0.0.1:0',
      ...(options.keyArg === undefined ? [] : ['--primary-key', options.keyArg]),
      ...named.args,
    ],
    ...(options.readyTimeoutMs === undefined ? {} : { readyTimeoutMs: options.readyTimeoutMs }),
    env: { ...(credential === undefined ? {} : { METASYNC_MIRROR_CREDENTIAL: credential }), ...options.env },
  });
  return Object.assign(daemon, { dataDir });
}

export interface VersionSpec {
  version: string;
  description?: string;
  require?: Record<string, string>;
}

/** PUT /api/v1/packages/{vendor}/{name}: replaces the version list; returns the generation seq. */
export async function publishPackage(primaryUrl: string, name: string, versions: VersionSpec[]): Promise<number> {
  const body = {
    versions: versions.map((v) => ({
      version: v.version,
      ...(v.description === undefined ? {} : { description: v.description }),
      ...(v.require === undefined ? {} : { require: v.require }),
      dist: { type: 'zip', url: `https://example.invalid/${name}/${v.version}.zip` },
    })),
  };
  const response = await fetch(`${primaryUrl}/api/v1/packages/${name}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${PUBLISH_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  if (response.status >= 300) throw new Error(`publish ${name} answered ${response.status}: ${text}`);
  return (JSON.parse(text) as { seq: number }).seq;
}

/** Publishes `count` packages `vendor/p<i>` with a padded description, `concurrency` at a time. */
export async function publishMany(
  primaryUrl: string,
  options: { vendor: string; count: number; version: string; padBytes?: number; concurrency?: number },
): Promise<number> {
  let next = 0;
  let maxSeq = 0;
  const pad = 'lorem ipsum dolor sit amet '.repeat(Math.ceil((options.padBytes ?? 0) / 27)).slice(0, options.padBytes ?? 0);
  await Promise.all(
    Array.from({ length: options.concurrency ?? 8 }, async () => {
      for (let i = next++; i < options.count; i = next++) {
        const seq = await publishPackage(primaryUrl, `${options.vendor}/p${i}`, [
          { version: options.version, description: `${i} ${options.version} ${pad}` },
        ]);
        maxSeq = Math.max(maxSeq, seq);
      }
    }),
  );
  return maxSeq;
}

export interface CheckedResponse {
  status: number;
  headers: Headers;
  /** Decoded body (fetch undoes gzip and br). */
  body: Buffer;
  /** True when the decoded body hashes to the sha256 in the ETag (or there is no sha ETag). */
  hashOk: boolean;
  etagSha?: string;
}

/** GETs a URL with Composer's Accept-Encoding and checks the decoded body against its ETag. */
export async function getChecked(url: string, headers: Record<string, string> = {}): Promise<CheckedResponse> {
  const response = await fetch(url, { headers: { 'accept-encoding': 'gzip, br', ...headers }, signal: AbortSignal.timeout(10_000) });
  const body = Buffer.from(await response.arrayBuffer());
  const etagSha = /^"([0-9a-f]{64})"$/.exec(response.headers.get('etag') ?? '')?.[1];
  const hashOk = etagSha === undefined || createHash('sha256').update(body).digest('hex') === etagSha;
  return { status: response.status, headers: response.headers, body, hashOk, ...(etagSha === undefined ? {} : { etagSha }) };
}

export async function getText(url: string): Promise<{ status: number; body: string }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return { status: response.status, body: await response.text() };
}

/** The primary's state at `seq` (path -> sha256), from its journal: changes since 0 limited to `seq` generations. */
export async function primaryStateAt(primaryUrl: string, seq: number): Promise<Map<string, string>> {
  const response = await fetch(`${primaryUrl}/sync/v1/changes?since=0&limit=${seq}`, { signal: AbortSignal.timeout(10_000) });
  const batch = (await response.json()) as { to: number; entries: { path: string; sha256?: string; deleted?: boolean }[] };
  if (batch.to !== seq) throw new Error(`primary answered changes up to ${batch.to}, wanted ${seq}`);
  return new Map(batch.entries.filter((e) => e.deleted !== true).map((e) => [e.path, e.sha256!]));
}
