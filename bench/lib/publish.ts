import type { Agent } from 'node:http';
import { httpRequest } from './http.js';

/** The primary's publish API (packages/primary/src/routes/publish-api.ts). */
export const PUBLISH_API_PREFIX = '/api/v1/packages';

export interface PublishResult {
  status: number;
  /** Generation that holds the change (from the answer). */
  seq: number;
  durationMs: number;
}

/** A small, valid version list; `version` is unique per publish so a client can tell it arrived. */
export function versionListBody(packageName: string, versions: readonly string[]): string {
  return JSON.stringify({
    versions: versions.map((version) => ({
      version,
      description: `bench package ${packageName}`,
      license: ['MIT'],
      require: { php: '>=8.1' },
      dist: { type: 'zip', url: `https://example.test/${packageName}/${version}.zip`, reference: version.replaceAll('.', '') },
      time: '2026-01-01T00:00:00+00:00',
    })),
  });
}

/** `PUT /api/v1/packages/{vendor}/{name}`: replaces the package's version list. */
export async function putPackage(options: {
  primaryUrl: string;
  token: string;
  packageName: string;
  versions: readonly string[];
  agent: Agent;
}): Promise<PublishResult> {
  const startNs = process.hrtime.bigint();
  const response = await httpRequest(`${options.primaryUrl}${PUBLISH_API_PREFIX}/${options.packageName}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${options.token}`, 'content-type': 'application/json' },
    body: versionListBody(options.packageName, options.versions),
    agent: options.agent,
    timeoutMs: 30_000,
  });
  const durationMs = Number(process.hrtime.bigint() - startNs) / 1e6;
  const text = response.body.toString('utf8');
  if (response.status < 200 || response.status > 299) {
    throw new Error(
      `PUT ${options.primaryUrl}${PUBLISH_API_PREFIX}/${options.packageName}: expected 2xx, got ${response.status}: ${text.slice(0, 300)}`,
    );
  }
  const { seq } = JSON.parse(text) as { seq: number };
  return { status: response.status, seq, durationMs };
}
