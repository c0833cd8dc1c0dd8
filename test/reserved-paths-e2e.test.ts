import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  getText,
  makeTempDir,
  removeTempDirs,
  startMirror,
  startPrimary,
  type RunningMirror,
  type RunningPrimary,
} from './helpers/mirror-cluster.js';
import { waitFor } from './helpers/wait-for.js';

/**
 * Issue 11: a source tree holding files named like the daemons' routes must
 * not make those routes answer the files. Built daemons, the primary watching
 * a real source dir, one mirror synced from it.
 */
const SHADOW = 'SHADOW-CONTENT-from-the-source-tree';
const P2 = '{"packages":{"acme/foo":[{"name":"acme/foo","version":"1.0.0"}]},"minified":"composer/2.0"}';
let primary: RunningPrimary;
let mirror: RunningMirror;

async function writeSource(root: string, path: string, text: string): Promise<void> {
  const absolute = join(root, ...path.split('/'));
  await mkdir(dirname(absolute), { recursive: true });
  await writeFile(absolute, text);
}

beforeAll(async () => {
  const source = await makeTempDir('e2e-reserved-source-');
  for (const path of ['health/fresh', 'healthz', 'metrics', 'status']) await writeSource(source, path, `${SHADOW} ${path}\n`);
  await writeSource(source, 'p2/acme/foo.json', P2);
  primary = await startPrimary({ args: ['--source', source] });
  mirror = await startMirror({ primaryUrl: primary.url, keyArg: primary.keyArg });
  // The primary has reconciled the whole tree before it listens; wait until the mirror applied all of it.
  const headSeq = (await fetch(`${primary.url}/p2/acme/foo.json`)).headers.get('x-metasync-seq');
  expect(headSeq).toMatch(/^[1-9]\d*$/);
  await waitFor(async () => (await fetch(`${mirror.url}/p2/acme/foo.json`)).headers.get('x-metasync-seq') === headSeq, {
    what: `mirror at the primary's head seq ${headSeq}`,
  });
});

afterAll(async () => {
  await mirror?.stop();
  await primary?.stop();
  await removeTempDirs();
});

describe('a source tree cannot shadow the daemons own routes', () => {
  it("the mirror's GET /health/fresh, /healthz and /metrics answer as routes, not with the source files", async () => {
    const fresh = await getText(`${mirror.url}/health/fresh`);
    expect(fresh.body).not.toContain(SHADOW);
    expect(fresh.body).toMatch(/fresh|lag|seq|stale/i);
    const healthz = await getText(`${mirror.url}/healthz`);
    expect(healthz).toEqual({ status: 200, body: 'ok\n' });
    const metrics = await getText(`${mirror.url}/metrics`);
    expect(metrics.body).not.toContain(SHADOW);
    expect(metrics.body).toContain('# TYPE');
  });

  it('the primary neither publishes nor serves them', async () => {
    for (const path of ['health/fresh', 'healthz', 'metrics', 'status']) {
      const answer = await getText(`${primary.url}/${path}`);
      expect(answer.body, `/${path}`).not.toContain(SHADOW);
    }
    const metrics = await getText(`${primary.url}/metrics`);
    expect(metrics.body).toMatch(/metasync_primary_reserved_paths_refused_total\{source="watch"\} [1-9]/);
  });
});
