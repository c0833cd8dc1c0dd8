import { rootCertificates } from 'node:tls';
import { Agent, request, setGlobalDispatcher } from 'undici';
import { z } from 'zod';
import {
  changesBatchSchema,
  HEADERS,
  MIRROR_CREDENTIAL_ROUTES,
  metasyncError,
  mirrorsResponseSchema,
  publicKeyInfoSchema,
  snapshotSchema,
  stateResponseSchema,
  SYNC_ROUTES,
  tlsHandshakeError,
  type MirrorsResponse,
  type StateResponse,
} from '@metasync/shared';

/** What the CLI reads from the primary and the mirrors, over HTTP or HTTPS, with timeouts. */
const TIMEOUT_MS = 5_000;
const TLS_HINT = 'pass the CA that signed its certificate with --ca FILE (or METASYNC_CA_FILE, or "caFile" in the config)';

/**
 * --ca: every request the CLI makes (undici's global dispatcher) trusts this CA besides the
 * system ones, so one run can reach a primary with a private CA and mirrors with public ones.
 */
export function trustCa(ca: Buffer): void {
  setGlobalDispatcher(new Agent({ connect: { ca: [...rootCertificates, ca.toString('utf8')] } }));
}

export function joinUrl(base: string, path: string): string {
  return `${base.replace(/\/+$/, '')}${path.startsWith('/') ? path : `/${path}`}`;
}

interface JsonCall {
  method?: 'GET' | 'POST' | 'DELETE';
  headers?: Record<string, string>;
  body?: string;
  timeoutMs?: number;
  /** Throws its own error for a status that means something to the caller (e.g. a refused token). */
  checkStatus?: (status: number) => void;
}

/** One HTTP call whose 200 answer is JSON of `schema`; every other outcome is a METASYNC_ERR_SYNC_* error naming the URL. */
async function requestJson<T>(url: string, schema: z.ZodType<T>, call: JsonCall = {}): Promise<T> {
  const method = call.method ?? 'GET';
  const timeoutMs = call.timeoutMs ?? TIMEOUT_MS;
  let response;
  try {
    response = await request(url, {
      method,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      headers: { accept: 'application/json', ...call.headers },
      body: call.body,
    });
  } catch (err) {
    throw (
      tlsHandshakeError(err, url, TLS_HINT) ??
      metasyncError('METASYNC_ERR_SYNC_UNREACHABLE', `${method} ${url} failed: ${(err as Error).message}`, { url }, err)
    );
  }
  const text = await response.body.text();
  call.checkStatus?.(response.statusCode);
  if (response.statusCode !== 200) {
    throw metasyncError('METASYNC_ERR_SYNC_PROTOCOL', `${method} ${url} answered HTTP ${response.statusCode}: ${text.slice(0, 200)}`, {
      url,
      status: response.statusCode,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw metasyncError('METASYNC_ERR_SYNC_PROTOCOL', `${method} ${url} did not answer JSON`, { url }, err);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success)
    throw metasyncError(
      'METASYNC_ERR_SYNC_PROTOCOL',
      `${method} ${url} answered an unexpected shape: ${parsed.error.message.slice(0, 300)}`,
      { url },
    );
  return parsed.data;
}

function getJson<T>(url: string, schema: z.ZodType<T>, timeoutMs = TIMEOUT_MS): Promise<T> {
  return requestJson(url, schema, { timeoutMs });
}

export function fetchPrimaryState(primary: string): Promise<StateResponse> {
  return getJson(joinUrl(primary, SYNC_ROUTES.state), stateResponseSchema);
}

export function fetchPrimaryMirrors(primary: string): Promise<MirrorsResponse> {
  return getJson(joinUrl(primary, SYNC_ROUTES.mirrors), mirrorsResponseSchema);
}

/** Every path of the primary's head generation with its sha256: the snapshot rolled forward by the changes since. */
export async function fetchPrimaryManifest(primary: string): Promise<{ seq: number; entries: Map<string, string> }> {
  const snapshot = await getJson(joinUrl(primary, SYNC_ROUTES.snapshot), snapshotSchema, 60_000);
  const entries = new Map(snapshot.entries.map((entry) => [entry.path, entry.sha256]));
  let seq = snapshot.seq;
  for (let round = 0; round < 1_000; round++) {
    const batch = await getJson(joinUrl(primary, `${SYNC_ROUTES.changes}?since=${seq}`), changesBatchSchema, 60_000);
    for (const entry of batch.entries) {
      if ('deleted' in entry) entries.delete(entry.path);
      else entries.set(entry.path, entry.sha256);
    }
    seq = batch.to;
    if (batch.to >= batch.head) return { seq, entries };
  }
  throw metasyncError('METASYNC_ERR_SYNC_PROTOCOL', `changes from ${primary} did not reach the head after 1000 batches`, { primary });
}

export type Health = 'fresh' | 'stale' | 'down';

export interface MirrorProbe {
  health: Health;
  /** The freshness body (why it is stale) or the connection error. */
  detail: string;
  /** Generation the mirror serves (its `x-metasync-seq` header), when it answered one. */
  seq?: number;
}

/** Asks a mirror's freshness endpoint (what DNS checks) and which generation it serves. */
export async function probeMirror(input: { url: string; healthUrl?: string | undefined; timeoutMs?: number }): Promise<MirrorProbe> {
  const timeoutMs = input.timeoutMs ?? 2_000;
  const probe: MirrorProbe = { health: 'down', detail: '' };
  try {
    const response = await request(input.healthUrl ?? joinUrl(input.url, '/health/fresh'), {
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    const body = (await response.body.text()).trim();
    probe.health = response.statusCode === 200 && body.startsWith('fresh') ? 'fresh' : 'stale';
    probe.detail = body.slice(0, 200);
  } catch (err) {
    probe.detail = (tlsHandshakeError(err, input.url, TLS_HINT) ?? (err as Error)).message;
    return probe;
  }
  try {
    const head = await request(joinUrl(input.url, '/packages.json'), { method: 'HEAD', headersTimeout: timeoutMs });
    await head.body.dump();
    const seq = Number(head.headers[HEADERS.seq]);
    if (Number.isInteger(seq)) probe.seq = seq;
  } catch (err) {
    // The freshness answer above already says how the mirror is; only the seq is unknown.
    probe.detail = `${probe.detail} (seq unknown: ${(err as Error).message})`;
  }
  return probe;
}

/** Raw bytes of one repository path as the mirror serves them (no content coding). */
export async function fetchMirrorPath(mirrorUrl: string, path: string): Promise<{ status: number; body: Buffer }> {
  const url = joinUrl(mirrorUrl, `/${path}`);
  try {
    const response = await request(url, {
      headers: { 'accept-encoding': 'identity' },
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
    const body = Buffer.from(await response.body.arrayBuffer());
    return { status: response.statusCode, body };
  } catch (err) {
    throw (
      tlsHandshakeError(err, url, TLS_HINT) ??
      metasyncError('METASYNC_ERR_SYNC_UNREACHABLE', `GET ${url} failed: ${(err as Error).message}`, { url }, err)
    );
  }
}

export interface DrainAnswer {
  /** `drained`: the mirror answered 200; `disabled`: it has no admin token configured (404). */
  outcome: 'drained' | 'disabled';
  body: string;
}

/**
 * POST the mirror's /admin/drain: its /health/fresh turns 503 `draining` and,
 * if it registered itself in DNS, it withdraws its record before answering
 * (so this may take one TTL plus margin). It keeps serving until stopped.
 */
export async function drainMirror(input: { url: string; token: string; timeoutMs: number }): Promise<DrainAnswer> {
  const url = joinUrl(input.url, '/admin/drain');
  let response;
  try {
    response = await request(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${input.token}` },
      headersTimeout: input.timeoutMs,
      bodyTimeout: input.timeoutMs,
    });
  } catch (err) {
    throw (
      tlsHandshakeError(err, url, TLS_HINT) ??
      metasyncError('METASYNC_ERR_SYNC_UNREACHABLE', `POST ${url} failed: ${(err as Error).message}`, { url }, err)
    );
  }
  const body = (await response.body.text()).slice(0, 500);
  if (response.statusCode === 200) return { outcome: 'drained', body };
  if (response.statusCode === 404) return { outcome: 'disabled', body };
  if (response.statusCode === 401 || response.statusCode === 403) {
    throw metasyncError(
      'METASYNC_ERR_CLI_USAGE',
      `POST ${url} refused the admin token (HTTP ${response.statusCode}): check METASYNC_ADMIN_TOKEN[_FILE]`,
      { url, status: response.statusCode },
    );
  }
  throw metasyncError('METASYNC_ERR_DNS_CALL_FAILED', `POST ${url} answered HTTP ${response.statusCode}: ${body}`, {
    url,
    status: response.statusCode,
  });
}

const rotationAnswerSchema = z.object({
  version: z.number().int().nonnegative(),
  active: publicKeyInfoSchema,
  retired: z.array(z.object({ keyId: z.string(), notAfter: z.number() })),
});
export type RotationAnswer = z.infer<typeof rotationAnswerSchema>;

/**
 * POST the primary's /admin/keys/rotate: from its answer on the new key signs
 * everything; the old one can still endorse the key set until `notAfter`, which
 * is how mirrors learn the new key without a restart (docs/operations.md).
 */
export function rotatePrimaryKey(input: { primary: string; token: string; overlapMs: number }): Promise<RotationAnswer> {
  const url = joinUrl(input.primary, '/admin/keys/rotate');
  return requestJson(url, rotationAnswerSchema, {
    method: 'POST',
    headers: { authorization: `Bearer ${input.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ overlapMs: input.overlapMs }),
    checkStatus: (status) => {
      if (status === 401 || status === 403) {
        throw metasyncError(
          'METASYNC_ERR_CLI_USAGE',
          `POST ${url} refused the token (HTTP ${status}): METASYNC_PRIMARY_TOKEN[_FILE] must be a primary token with admin rights`,
          { url, status },
        );
      }
    },
  });
}

/** A refused admin token is a usage problem (exit 2): nothing changed on the primary. */
function refusedPrimaryToken(url: string, method: string) {
  return (status: number): void => {
    if (status === 401 || status === 403) {
      throw metasyncError(
        'METASYNC_ERR_CLI_USAGE',
        `${method} ${url} refused the token (HTTP ${status}): METASYNC_PRIMARY_TOKEN[_FILE] must be a primary token with admin rights`,
        { url, status },
      );
    }
  };
}

const issuedCredentialSchema = z.object({ mirrorId: z.string(), credential: z.string().min(1), createdAt: z.string().optional() });
const revokedCredentialSchema = z.object({ mirrorId: z.string(), outcome: z.enum(['revoked', 'already-revoked', 'unknown']) });
const credentialListSchema = z.object({
  mirrors: z.array(z.object({ mirrorId: z.string(), sha256: z.string(), revoked: z.boolean(), createdAt: z.string().optional() })),
});
export type EnrolledMirror = z.infer<typeof credentialListSchema>['mirrors'][number];

/** POST /admin/mirrors/<id>/credential: a new credential for the mirror (replacing any earlier one); shown once. */
export function issueMirrorCredential(input: { primary: string; token: string; mirrorId: string }): Promise<{ credential: string }> {
  const url = joinUrl(input.primary, MIRROR_CREDENTIAL_ROUTES.one(input.mirrorId));
  return requestJson(url, issuedCredentialSchema, {
    method: 'POST',
    headers: { authorization: `Bearer ${input.token}` },
    checkStatus: refusedPrimaryToken(url, 'POST'),
  });
}

/** DELETE /admin/mirrors/<id>/credential: idempotent (`already-revoked`, `unknown` are answers, not errors). */
export function revokeMirrorCredential(input: {
  primary: string;
  token: string;
  mirrorId: string;
}): Promise<{ outcome: 'revoked' | 'already-revoked' | 'unknown' }> {
  const url = joinUrl(input.primary, MIRROR_CREDENTIAL_ROUTES.one(input.mirrorId));
  return requestJson(url, revokedCredentialSchema, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${input.token}` },
    checkStatus: refusedPrimaryToken(url, 'DELETE'),
  });
}

/** GET /admin/mirrors/credentials: every enrolled mirror id with the sha256 of its credential (never a secret). */
export async function listMirrorCredentials(input: { primary: string; token: string }): Promise<EnrolledMirror[]> {
  const url = joinUrl(input.primary, MIRROR_CREDENTIAL_ROUTES.list);
  const answer = await requestJson(url, credentialListSchema, {
    headers: { authorization: `Bearer ${input.token}` },
    checkStatus: refusedPrimaryToken(url, 'GET'),
  });
  return answer.mirrors;
}
