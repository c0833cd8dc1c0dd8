import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { hasErrno, metasyncError, objectRelPath } from '@metasync/shared';
import { fetchMirrorPath, fetchPrimaryManifest, probeMirror } from '../remote.js';
import { requirePrimary, type CommandContext } from './context.js';

export interface VerifyOptions {
  mirrorId?: string | undefined;
  url?: string | undefined;
  dataDir?: string | undefined;
  json: boolean;
  concurrency: number;
}

export interface Difference {
  /** A repository path, or `objects/<sha256>[.gz|.br]` for an on-disk object. */
  path: string;
  problem: 'missing' | 'hash-mismatch' | 'object-missing' | 'object-corrupt';
  expected: string;
  got: string;
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

async function pool<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++]!;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
}

/** Every on-disk object a manifest needs: present (its gzip or raw file), and every file it has must hash to its name. */
async function verifyObjectsOnDisk(
  dataDir: string,
  hashes: ReadonlySet<string>,
  concurrency: number,
  differences: Difference[],
): Promise<void> {
  await pool([...hashes], concurrency, async (hash) => {
    const base = join(dataDir, 'objects', objectRelPath(hash));
    // The object is its gzip file, or its raw file when it keeps no gzip variant (both, from older versions).
    let objectFiles = 0;
    for (const [suffix, decode] of [
      ['', (b: Buffer) => b],
      ['.gz', gunzipSync],
      ['.br', brotliDecompressSync],
    ] as const) {
      let bytes: Buffer;
      try {
        bytes = await readFile(base + suffix);
      } catch (err) {
        if (!hasErrno(err, 'ENOENT')) throw err;
        continue;
      }
      if (suffix !== '.br') objectFiles++;
      let got: string;
      try {
        got = sha256(decode(bytes));
      } catch (err) {
        got = `undecodable: ${(err as Error).message}`;
      }
      if (got !== hash) differences.push({ path: `objects/${hash}${suffix}`, problem: 'object-corrupt', expected: hash, got });
    }
    if (objectFiles === 0) differences.push({ path: `objects/${hash}`, problem: 'object-missing', expected: hash, got: 'absent' });
  });
}

/**
 * Compares what a mirror serves (and, with --data, what its store holds on
 * disk) against the primary's head manifest, path by path, by sha256.
 */
export async function runVerify(ctx: CommandContext, options: VerifyOptions): Promise<number> {
  const primary = requirePrimary(ctx.config);
  const configured = options.mirrorId === undefined ? undefined : ctx.config.mirrors[options.mirrorId];
  const url = options.url ?? configured?.url;
  if (url === undefined)
    throw metasyncError(
      'METASYNC_ERR_CLI_USAGE',
      `verify needs a mirror: a configured mirror id or --url (got ${options.mirrorId ?? 'none'})`,
      {},
    );
  const dataDir = options.dataDir ?? configured?.dataDir;
  const manifest = await fetchPrimaryManifest(primary);
  const probe = await probeMirror({ url });
  // Every path would otherwise be one more connection error: say once that the mirror is down (exit 5).
  if (probe.health === 'down')
    throw metasyncError('METASYNC_ERR_SYNC_UNREACHABLE', `mirror ${url} cannot be reached (${probe.detail}); nothing was verified`, {
      url,
    });
  const differences: Difference[] = [];
  const paths = [...manifest.entries.keys()].sort();
  await pool(paths, options.concurrency, async (path) => {
    const expected = manifest.entries.get(path)!;
    const response = await fetchMirrorPath(url, path);
    if (response.status !== 200) differences.push({ path, problem: 'missing', expected, got: `HTTP ${response.status}` });
    else if (sha256(response.body) !== expected) differences.push({ path, problem: 'hash-mismatch', expected, got: sha256(response.body) });
  });
  if (dataDir !== undefined) await verifyObjectsOnDisk(dataDir, new Set(manifest.entries.values()), options.concurrency, differences);
  differences.sort((a, b) => a.path.localeCompare(b.path));
  const summary = {
    primarySeq: manifest.seq,
    mirrorSeq: probe.seq ?? null,
    paths: paths.length,
    checkedDisk: dataDir !== undefined,
    differences,
  };
  if (options.json) ctx.io.out(JSON.stringify(summary, null, 2));
  else {
    ctx.io.out(
      `verified ${paths.length} paths of primary seq ${manifest.seq} against ${url} (serving seq ${probe.seq ?? 'unknown'})${dataDir === undefined ? '' : ` and its objects in ${dataDir}`}`,
    );
    if (probe.seq !== undefined && probe.seq !== manifest.seq)
      ctx.io.err(
        `note: the mirror serves seq ${probe.seq}, the primary is at ${manifest.seq}; paths changed in between show as differences`,
      );
    for (const d of differences) ctx.io.out(`${d.problem}\t${d.path}\texpected ${d.expected}\tgot ${d.got}`);
    ctx.io.out(differences.length === 0 ? 'no differences' : `${differences.length} difference(s)`);
  }
  return differences.length === 0 ? 0 : 6;
}
