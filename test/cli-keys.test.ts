import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';
import {
  PUBLISH_TOKEN,
  getText,
  publishPackage,
  removeTempDirs,
  startMirror,
  startPrimary,
  type RunningMirror,
  type RunningPrimary,
} from './helpers/mirror-cluster.js';
import { waitFor } from './helpers/wait-for.js';

/**
 * `metasync keys list` and `metasync keys rotate` against a real primary, with a
 * real mirror pinned to the first key: after the CLI rotates, the mirror must
 * keep following (it learns the new key from the old one's endorsement).
 */
interface StateKey {
  keyId: string;
  publicKey: string;
  active: boolean;
  notAfter?: number;
}

let primary: RunningPrimary;
let mirror: RunningMirror;

async function stateKeys(): Promise<StateKey[]> {
  return ((await (await fetch(`${primary.url}/sync/v1/state`)).json()) as { keys: StateKey[] }).keys;
}

beforeAll(async () => {
  primary = await startPrimary();
  mirror = await startMirror({ primaryUrl: primary.url, keyArg: primary.keyArg });
  await publishPackage(primary.url, 'acme/keys', [{ version: '1.0.0' }]);
  await waitFor(async () => (await getText(`${mirror.url}/p2/acme/keys.json`)).body.includes('"1.0.0"'), {
    what: 'mirror serves 1.0.0',
    timeoutMs: 10_000,
  });
}, 60_000);

afterAll(async () => {
  await mirror?.stop();
  await primary?.stop();
  await removeTempDirs();
});

describe('metasync keys (real primary and mirror)', () => {
  it('lists the active key with the value that pins it', async () => {
    const result = await runCli(['keys', 'list', '--primary', primary.url, '--json']);
    expect(result.code, result.stderr).toBe(0);
    const listed = (JSON.parse(result.stdout) as { keys: StateKey[] }).keys;
    expect(listed.map((key) => `${key.keyId}:${key.publicKey}`)).toEqual([primary.keyArg]);
    const table = await runCli(['keys', 'list', '--primary', primary.url]);
    expect(table.stdout).toContain(primary.keyArg);
    expect(table.stdout).toContain('active');
  });

  it('refuses to rotate without a token, with a wrong token, with overlap 0 unless forced or an overlap out of range, and changes nothing', async () => {
    const before = await stateKeys();
    // Every place a token could come from is blanked, so the caller's environment cannot supply one.
    const noToken = await runCli(['keys', 'rotate', '--primary', primary.url], {
      env: { METASYNC_PRIMARY_TOKEN: '', METASYNC_PRIMARY_TOKEN_FILE: '', METASYNC_CONFIG: '' },
    });
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toContain('METASYNC_PRIMARY_TOKEN');
    const wrong = await runCli(['keys', 'rotate', '--primary', primary.url], { env: { METASYNC_PRIMARY_TOKEN: 'not-the-token' } });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/refused the token \(HTTP 40[13]\)/);
    const zero = await runCli(['keys', 'rotate', '--primary', primary.url, '--overlap-ms', '0'], {
      env: { METASYNC_PRIMARY_TOKEN: PUBLISH_TOKEN },
    });
    expect(zero.code).toBe(2);
    expect(zero.stderr).toContain('--force');
    const negative = await runCli(['keys', 'rotate', '--primary', primary.url, '--overlap-ms', '-5'], {
      env: { METASYNC_PRIMARY_TOKEN: PUBLISH_TOKEN },
    });
    expect(negative.code).toBe(2);
    expect(negative.stderr).toContain('expected a whole number of milliseconds');
    const tooLong = await runCli(['keys', 'rotate', '--primary', primary.url, '--overlap-ms', String(91 * 86_400_000)], {
      env: { METASYNC_PRIMARY_TOKEN: PUBLISH_TOKEN },
    });
    expect(tooLong.code).toBe(2);
    expect(tooLong.stderr).toContain('at most 7776000000 (90 days)');
    expect(await stateKeys()).toEqual(before);
  });

  it('says the key may already have rotated when the answer is a 5xx (not safe to retry blindly)', async () => {
    // A gateway that lost the primary's answer: the rotation may have happened behind it.
    const gateway = createServer((_req, res) => res.writeHead(502, { 'content-type': 'text/plain' }).end('bad gateway'));
    await new Promise<void>((resolve) => gateway.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}`;
      const result = await runCli(['keys', 'rotate', '--primary', url], { env: { METASYNC_PRIMARY_TOKEN: PUBLISH_TOKEN } });
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain('HTTP 502');
      expect(result.stderr).toContain("The key may already have rotated: run 'metasync keys list' before retrying");
    } finally {
      await new Promise((resolve) => gateway.close(resolve));
    }
  });

  it('rotates with an overlap; the old key is listed as retired until then and the pinned mirror keeps following', async () => {
    const [oldKey] = await stateKeys();
    const overlapMs = 120_000;
    const startedAt = Date.now();
    // Marked before the rotation: the mirror may learn the new key at its next state poll, before any publish.
    const mark = mirror.logs.length;
    const result = await runCli(['keys', 'rotate', '--primary', primary.url, '--overlap-ms', String(overlapMs)], {
      env: { METASYNC_PRIMARY_TOKEN: PUBLISH_TOKEN },
    });
    expect(result.code, result.stderr).toBe(0);

    const after = await stateKeys();
    const active = after.find((key) => key.active);
    const retired = after.find((key) => key.keyId === oldKey!.keyId);
    expect(active?.keyId).not.toBe(oldKey!.keyId);
    expect(retired?.active).toBe(false);
    expect(retired?.notAfter).toBeGreaterThanOrEqual(startedAt + overlapMs);
    expect(retired?.notAfter).toBeLessThanOrEqual(Date.now() + overlapMs);
    expect(result.stdout).toContain(`new active key ${active!.keyId}`);
    expect(result.stdout).toContain(`--primary-key ${active!.keyId}:${active!.publicKey}`);

    // The mirror was pinned to the old key only: serving the next publish proves it verified the new one.
    await publishPackage(primary.url, 'acme/keys', [{ version: '1.0.0' }, { version: '2.0.0' }]);
    await waitFor(async () => (await getText(`${mirror.url}/p2/acme/keys.json`)).body.includes('"2.0.0"'), {
      what: 'mirror serves 2.0.0 signed by the new key',
      timeoutMs: 10_000,
    });
    // Logs arrive over a pipe, possibly after the mirror already served 2.0.0.
    await waitFor(() => mirror.logs.slice(mark).some((line) => line.msg === 'learned primary keys'), {
      what: "the mirror's 'learned primary keys' log line",
      timeoutMs: 5_000,
    });
    expect((await fetch(`${mirror.url}/health/fresh`)).status).toBe(200);
  }, 30_000);
});
