import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/**
 * The large corpus the benches share, as a Composer repository tree on disk.
 * STAND-IN: until test/helpers/corpus.ts (generateCorpus, writeCorpusTree)
 * lands, this writes a comparable tree itself; the benches only depend on
 * `CorpusTree`.
 */
export interface CorpusTree {
  dir: string;
  /** Repository paths relative to `dir`, e.g. `p2/acme/pkg-1.json`. */
  paths: string[];
  /** The `p2/...` subset, what Composer clients fetch most. */
  p2Paths: string[];
  bytes: number;
}

export async function buildCorpusTree(options: { dir: string; paths: number; seed: number }): Promise<CorpusTree> {
  const random = mulberry32(options.seed);
  await mkdir(options.dir, { recursive: true });
  let written = 0;
  const writes: Promise<void>[] = [];
  const flush = async (): Promise<void> => {
    await Promise.all(writes.splice(0));
  };
  await writeTreeFile(options.dir, 'packages.json', JSON.stringify({ packages: [], 'metadata-url': '/p2/%package%.json' }));
  written += 1;
  for (let index = 0; written < options.paths; index++) {
    const name = `vendor${index % 997}/package-${index}`;
    writes.push(writeTreeFile(options.dir, `p2/${name}.json`, renderP2(name, random, false)));
    written += 1;
    if (written < options.paths && random() < 0.3) {
      writes.push(writeTreeFile(options.dir, `p2/${name}~dev.json`, renderP2(name, random, true)));
      written += 1;
    }
    if (writes.length >= 64) await flush();
  }
  await flush();
  return await readCorpusTree(options.dir);
}

/** Lists a tree already on disk. */
export async function readCorpusTree(dir: string): Promise<CorpusTree> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const paths: string[] = [];
  let bytes = 0;
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const relative = join(entry.parentPath, entry.name).slice(dir.length + 1);
    paths.push(relative);
  }
  paths.sort();
  for (let start = 0; start < paths.length; start += 256) {
    const sizes = await Promise.all(paths.slice(start, start + 256).map(async (path) => (await stat(join(dir, path))).size));
    bytes += sizes.reduce((total, size) => total + size, 0);
  }
  return { dir, paths, p2Paths: paths.filter((path) => path.startsWith('p2/')), bytes };
}

async function writeTreeFile(root: string, path: string, body: string): Promise<void> {
  const target = join(root, path);
  await mkdir(dirname(target), { recursive: true });
  await writeFile(target, body);
}

/** Packagist-like sizes: most files a few KB, a long tail towards ~1 MB. */
function renderP2(name: string, random: () => number, dev: boolean): string {
  const normal = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const targetBytes = Math.min(1_000_000, Math.exp(8.2 + 1.1 * normal));
  const versions: Record<string, unknown>[] = [];
  let size = 0;
  for (let index = 0; size < targetBytes || versions.length === 0; index++) {
    const version = dev ? `dev-branch-${index}` : `${Math.floor(index / 10)}.${index % 10}.0`;
    const entry: Record<string, unknown> = {
      version,
      version_normalized: dev ? version : `${version}.0`,
      dist: { type: 'zip', url: `https://example.test/${name}/${version}.zip`, reference: hex(random, 40), shasum: '' },
      source: { type: 'git', url: `https://example.test/${name}.git`, reference: hex(random, 40) },
      time: new Date(1_600_000_000_000 + index * 86_400_000).toISOString(),
    };
    if (index === 0) Object.assign(entry, { name, description: `bench package ${name}`, license: ['MIT'], require: { php: '>=8.1' } });
    versions.push(entry);
    size += JSON.stringify(entry).length;
  }
  return JSON.stringify({ minified: 'composer/2.0', packages: { [name]: versions } });
}

function hex(random: () => number, length: number): string {
  let text = '';
  while (text.length < length) text += Math.floor(random() * 0x100000000).toString(16).padStart(8, '0');
  return text.slice(0, length);
}

function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
