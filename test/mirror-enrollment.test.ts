/**
 * Enrolled mirrors and pinned keys (issue 12, parts 2 and 3) with the built
 * primary, mirror and CLI as processes: forged acks and push streams change
 * nothing the primary shows, an enrolled mirror's acks do, a revocation in the
 * credentials file takes effect without a restart, `mirror up` enrolls and pins,
 * `mirror retire` revokes, and a mirror with no pinned key refuses to start.
 */
import { execFile, spawn } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';
import { startCluster, type Cluster } from './helpers/cluster.js';
import { BINS, startDaemon, type Daemon } from './helpers/daemon.js';
import { freePort } from './helpers/free-port.js';
import { waitFor } from './helpers/wait-for.js';

const execFileAsync = promisify(execFile);

interface Listed {
  mirrorId: string;
  url: string;
  seq: number;
}

describe('enrolled mirrors and pinned keys (real processes)', () => {
  let cluster: Cluster;
  let eu: { daemon: Daemon; credential: string | undefined };
  let us: { daemon: Daemon; credential: string | undefined };

  const listed = async (): Promise<Listed[]> =>
    ((await (await fetch(`${cluster.primary.url}/sync/v1/mirrors`)).json()) as { mirrors: Listed[] }).mirrors;
  const statusPage = async (): Promise<string> => (await fetch(`${cluster.primary.url}/status/data.json`)).text();
  const metrics = async (): Promise<string> => (await fetch(`${cluster.primary.url}/metrics`)).text();
  const ack = (body: { mirrorId: string; url: string; seq?: number }, credential?: string): Promise<Response> =>
    fetch(`${cluster.primary.url}/sync/v1/ack`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(credential === undefined ? {} : { authorization: `Bearer ${credential}` }) },
      body: JSON.stringify({ region: 'eu-west-1', seq: 1, appliedAt: Date.now(), ...body }),
    });
  const refusedCount = (text: string, route: string, reason: string): number =>
    Number(
      new RegExp(`^metasync_primary_mirror_auth_refused_total\\{route="${route}",reason="${reason}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0,
    );

  beforeAll(async () => {
    cluster = await startCluster();
    await cluster.publish('acme/widget', '1.0.0');
    eu = await cluster.startMirror({ mirrorId: 'eu-1', region: 'eu-west-1' });
    us = await cluster.startMirror({ mirrorId: 'us-1', region: 'us-east-1' });
    const head = await cluster.headSeq();
    await waitFor(async () => (await listed()).filter((m) => m.seq >= head).length === 2, {
      timeoutMs: 15_000,
      what: 'both mirrors acked',
    });
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('refuses forged acks and push streams (no, wrong, another mirror’s credential) and changes nothing it shows', async () => {
    const before = await listed();
    const pageBefore = await statusPage();
    expect(before.map((m) => m.mirrorId)).toEqual(['eu-1', 'us-1']);

    const none = await ack({ mirrorId: 'spoofed-eu-1', url: 'http://attacker.example/' });
    expect(none.status).toBe(401);
    expect(((await none.json()) as { code: string }).code).toBe('METASYNC_ERR_AUTH_MISSING');
    const wrong = await ack({ mirrorId: 'spoofed-eu-1', url: 'http://attacker.example/' }, 'msm_made-up');
    expect(wrong.status).toBe(403);
    expect(((await wrong.json()) as { code: string }).code).toBe('METASYNC_ERR_AUTH_MIRROR_CREDENTIAL');
    expect((await ack({ mirrorId: 'spoofed-eu-1', url: 'http://attacker.example/' }, eu.credential)).status).toBe(403);
    // A real mirror's id with another mirror's credential cannot move it (url, seq) either.
    expect((await ack({ mirrorId: 'eu-1', url: 'http://attacker.example/', seq: 0 }, us.credential)).status).toBe(403);
    const stream = await fetch(`${cluster.primary.url}/sync/v1/events`, { headers: { 'x-metasync-mirror': 'spoofed-stream' } });
    expect(stream.status).toBe(401);
    await stream.body?.cancel();
    const streamWrong = await fetch(`${cluster.primary.url}/sync/v1/events?mirror=spoofed-stream`, {
      headers: { authorization: `Bearer ${eu.credential}` },
    });
    expect(streamWrong.status).toBe(403);
    await streamWrong.body?.cancel();

    const after = await listed();
    expect(after.map(({ mirrorId, url, seq }) => ({ mirrorId, url, seq }))).toEqual(
      before.map(({ mirrorId, url, seq }) => ({ mirrorId, url, seq })),
    );
    const pageAfter = await statusPage();
    expect(pageAfter).not.toContain('spoofed');
    expect(pageAfter).not.toContain('attacker.example');
    expect(pageBefore).toContain('eu-1');
    const text = await metrics();
    expect(refusedCount(text, 'ack', 'missing')).toBe(1);
    expect(refusedCount(text, 'ack', 'unknown')).toBe(1);
    expect(refusedCount(text, 'ack', 'other-mirror')).toBe(2);
    expect(refusedCount(text, 'events', 'missing')).toBe(1);
    expect(refusedCount(text, 'events', 'other-mirror')).toBe(1);
  });

  it("takes an enrolled mirror's acks: its applied seq follows a publish", async () => {
    await cluster.publish('acme/widget', '1.1.0');
    const head = await cluster.headSeq();
    await waitFor(async () => (await listed()).find((m) => m.mirrorId === 'eu-1' && m.seq === head), {
      timeoutMs: 10_000,
      what: `eu-1 acked ${head}`,
    });
    expect((await ack({ mirrorId: 'eu-1', url: eu.daemon.url, seq: head }, eu.credential)).status).toBe(204);
  });

  it('applies a revocation or an issue made in the credentials file by the subcommand, without a restart', async () => {
    const dataDir = join(cluster.root, 'primary');
    const revoked = await execFileAsync(process.execPath, [BINS.primary, 'mirror-credential', 'revoke', 'us-1', '--data', dataDir]);
    expect(revoked.stderr).toContain('us-1: revoked');
    await waitFor(async () => !(await listed()).some((m) => m.mirrorId === 'us-1'), { timeoutMs: 5_000, what: 'us-1 off the list' });
    expect((await ack({ mirrorId: 'us-1', url: 'http://attacker.example/' }, us.credential)).status).toBe(403);
    expect(await statusPage()).not.toContain('us-1');
    expect(refusedCount(await metrics(), 'ack', 'revoked')).toBeGreaterThanOrEqual(1);
    expect((await listed()).map((m) => m.mirrorId)).toEqual(['eu-1']);

    const issued = await execFileAsync(process.execPath, [BINS.primary, 'mirror-credential', 'issue', 'cli-1', '--data', dataDir]);
    const secret = issued.stdout.trim();
    expect(secret).toMatch(/^msm_[A-Za-z0-9_-]{43}$/);
    const file = await readFile(join(dataDir, 'mirror-credentials.json'), 'utf8');
    expect(file).not.toContain(secret);
    expect((await stat(join(dataDir, 'mirror-credentials.json'))).mode & 0o777).toBe(0o600);
    await waitFor(async () => (await ack({ mirrorId: 'cli-1', url: 'http://127.0.0.1:9/' }, secret)).status === 204, {
      timeoutMs: 5_000,
      what: 'the issued credential in force',
    });
    expect((await listed()).map((m) => m.mirrorId)).toEqual(['cli-1', 'eu-1']);
  });

  it('mirror up enrolls and pins a new mirror (a rerun keeps its credential); mirror retire revokes it last', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const credentialFile = join(cluster.root, 'new-1.credential');
    const keyFile = join(cluster.root, 'new-1.primary-key');
    const env = { METASYNC_PRIMARY: cluster.primary.url, METASYNC_PRIMARY_TOKEN: cluster.token, METASYNC_DNS_PROVIDER: 'none' };
    const args = ['mirror', 'up', 'new-1', '--url', url, '--region', 'eu-west-1', '--poll-ms', '100', '--timeout-ms', '30000'];
    const up = spawn(process.execPath, [BINS.cli, ...args, '--credential-file', credentialFile, '--primary-key-file', keyFile], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    up.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => up.once('exit', resolve));
    let mirror: Daemon | undefined;
    try {
      await waitFor(() => /credential written to/.test(stderr), { timeoutMs: 15_000, what: `enrollment; stderr: ${stderr}` });
      expect((await stat(credentialFile)).mode & 0o777).toBe(0o600);
      expect((await readFile(keyFile, 'utf8')).trim()).toBe(await cluster.keyArg());
      mirror = await startDaemon({
        bin: 'mirror',
        args: ['--primary', cluster.primary.url, '--data', join(cluster.root, 'mirror-new-1'), '--listen', `127.0.0.1:${port}`],
        env: {
          METASYNC_MIRROR_ID: 'new-1',
          METASYNC_REGION: 'eu-west-1',
          METASYNC_PRIMARY_KEY_FILE: keyFile,
          METASYNC_MIRROR_CREDENTIAL_FILE: credentialFile,
        },
      });
      expect(await exited, stderr).toBe(0);
      const head = await cluster.headSeq();
      await waitFor(async () => (await listed()).find((m) => m.mirrorId === 'new-1' && m.seq === head), {
        timeoutMs: 10_000,
        what: 'new-1 listed',
      });

      const held = await readFile(credentialFile, 'utf8');
      const rerun = await runCli([...args, '--credential-file', credentialFile], { env });
      expect(rerun.code, rerun.stderr).toBe(0);
      expect(rerun.stderr).toContain('already enrolled');
      expect(await readFile(credentialFile, 'utf8')).toBe(held);

      const retired = await runCli(
        ['mirror', 'retire', 'new-1', '--url', url, '--region', 'eu-west-1', '--stop-command', `kill -TERM ${mirror.child.pid}`],
        {
          env,
        },
      );
      expect(retired.code, retired.stderr).toBe(0);
      expect(retired.stderr.indexOf(`stopping new-1`)).toBeLessThan(retired.stderr.indexOf('credential of new-1 revoked'));
      expect((await listed()).some((m) => m.mirrorId === 'new-1')).toBe(false);
      expect((await ack({ mirrorId: 'new-1', url }, held.trim())).status).toBe(403);
      const again = await runCli(['mirror', 'retire', 'new-1', '--url', url, '--region', 'eu-west-1'], { env });
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).toContain('credential of new-1: already revoked');
      const noToken = await runCli(['mirror', 'retire', 'new-1', '--url', url, '--region', 'eu-west-1'], {
        env: { ...env, METASYNC_PRIMARY_TOKEN: '' },
      });
      expect(noToken.code).toBe(2);
      expect(noToken.stderr).toContain('METASYNC_PRIMARY_TOKEN');
    } finally {
      if (up.exitCode === null) up.kill('SIGKILL');
      await mirror?.stop();
    }
  }, 60_000);

  it('refuses to start a mirror with no pinned key, naming the flag; --trust-first-key starts with a warning', async () => {
    const base = ['--primary', cluster.primary.url, '--listen', '127.0.0.1:0', '--region', 'eu-west-1'];
    const refused = await execFileAsync(process.execPath, [BINS.mirror, ...base, '--data', join(cluster.root, 'unpinned')]).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('METASYNC_ERR_CONFIG_KEY_UNPINNED');
    expect(refused.stderr).toContain('--primary-key');
    await expect(stat(join(cluster.root, 'unpinned'))).rejects.toMatchObject({ code: 'ENOENT' });

    const trusting = await startDaemon({ bin: 'mirror', args: [...base, '--data', join(cluster.root, 'trusting'), '--trust-first-key'] });
    try {
      const warning = trusting.logs.find((entry) => typeof entry.msg === 'string' && entry.msg.startsWith('--trust-first-key'));
      expect(warning).toMatchObject({ level: 40 });
      await waitFor(async () => (await fetch(`${trusting.url}/p2/acme/widget.json`)).ok, {
        timeoutMs: 10_000,
        what: 'the trusting mirror syncs',
      });
    } finally {
      await trusting.stop();
    }
    // Every start warns, not only the first.
    const again = await startDaemon({ bin: 'mirror', args: [...base, '--data', join(cluster.root, 'trusting'), '--trust-first-key'] });
    try {
      expect(again.logs.some((entry) => typeof entry.msg === 'string' && entry.msg.startsWith('--trust-first-key'))).toBe(true);
    } finally {
      await again.stop();
    }
  }, 60_000);
});
