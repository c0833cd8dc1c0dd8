/**
 * A deterministic, Packagist-like Composer corpus shared by tests and benches.
 *
 * `generateCorpus` only draws each package's shape (name, number of tagged and
 * dev versions, its own seed), so 100k packages cost a few MB; the versions of
 * a package are generated on demand from its seed (`packageVersions`), and
 * `writeCorpusTree` renders each package with the primary's own renderer into
 * a Composer repository tree (packages.json + p2 files). Same seed, same bytes.
 *
 * Sizes: version counts are log-normal (median ~6, so most p2 files are a few
 * KB) with a small Pareto-like tail of very long-lived packages (up to ~2,500
 * versions, ~1 MB files), like packagist.org's p2 files.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { renderPackage, renderRootPackagesJson, type VersionData } from '@metasync/primary';

export interface CorpusPackage {
  name: string;
  /** Tagged versions (`p2/<name>.json`). */
  tagged: number;
  /** Dev branches (`p2/<name>~dev.json`); 0 means no ~dev file. */
  dev: number;
  /** Seed of this package's own generator. */
  seed: number;
}

export interface Corpus {
  seed: number;
  packages: readonly CorpusPackage[];
}

export interface CorpusTree {
  dir: string;
  /** Repository paths relative to `dir`, sorted: `packages.json`, `p2/...`. */
  paths: string[];
  p2Paths: string[];
  bytes: number;
}

/** Small, fast, seedable PRNG (mulberry32): uniform [0, 1). */
export function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function normal(random: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

const WORDS = [
  'http',
  'cache',
  'log',
  'queue',
  'mail',
  'auth',
  'json',
  'yaml',
  'orm',
  'test',
  'cli',
  'image',
  'pdf',
  'search',
  'event',
  'config',
  'router',
  'view',
  'crypto',
  'uuid',
];
const LICENSES = ['MIT', 'BSD-3-Clause', 'Apache-2.0', 'GPL-3.0-or-later', 'LGPL-2.1-only'];
const BRANCHES = ['dev-main', 'dev-master', 'dev-develop', '1.x-dev', '2.x-dev', 'dev-feature-next', 'dev-fix-ci'];

function drawTaggedCount(random: () => number): number {
  if (random() < 0.0015) return 800 + Math.floor(random() * 1700); // the long tail: ~1 MB files
  return Math.max(1, Math.min(600, Math.round(Math.exp(1.8 + 1.2 * normal(random)))));
}

/** Package shapes only; cheap even for 100k packages. */
export function generateCorpus(options: { packages: number; seed: number }): Corpus {
  const random = createRandom(options.seed);
  const vendors = Math.max(1, Math.ceil(options.packages / 8));
  const packages: CorpusPackage[] = [];
  for (let i = 0; i < options.packages; i++) {
    const vendor = `vendor${Math.floor(random() * vendors)}`;
    const word = WORDS[Math.floor(random() * WORDS.length)]!;
    const hasDev = random() < 0.3;
    packages.push({
      name: `${vendor}/${word}-${i}`,
      tagged: drawTaggedCount(random),
      dev: hasDev ? 1 + Math.floor(random() * 4) : 0,
      seed: Math.floor(random() * 0xffffffff),
    });
  }
  return { seed: options.seed, packages };
}

const BYTE_HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** A 40-hex-digit reference (a git sha), from five 32-bit draws. */
function gitReference(random: () => number): string {
  let text = '';
  for (let i = 0; i < 5; i++) {
    const word = Math.floor(random() * 0x100000000);
    text += BYTE_HEX[word >>> 24]! + BYTE_HEX[(word >>> 16) & 0xff]! + BYTE_HEX[(word >>> 8) & 0xff]! + BYTE_HEX[word & 0xff]!;
  }
  return text;
}

const DAY_MS = 86_400_000;
const dayCache = new Map<number, string>();
const TWO_DIGITS = Array.from({ length: 60 }, (_, i) => String(i).padStart(2, '0'));

/** Packagist's time format, `2024-01-31T12:00:00+00:00` (Date formatting is the slow part, so days are cached). */
function composerTime(epochMs: number): string {
  const day = Math.floor(epochMs / DAY_MS);
  let date = dayCache.get(day);
  if (date === undefined) {
    date = new Date(day * DAY_MS).toISOString().slice(0, 10);
    dayCache.set(day, date);
  }
  const seconds = Math.floor((epochMs - day * DAY_MS) / 1000);
  return `${date}T${TWO_DIGITS[Math.floor(seconds / 3600)]}:${TWO_DIGITS[Math.floor(seconds / 60) % 60]}:${TWO_DIGITS[seconds % 60]}+00:00`;
}

/** `n`-th tagged version, ascending: 0.1.0, 0.1.1, ... with the odd pre-release. */
function taggedVersion(n: number, random: () => number): string {
  const major = Math.floor(n / 40);
  const minor = Math.floor((n % 40) / 8);
  const patch = n % 8;
  const pre = random() < 0.05 ? ['-beta1', '-RC1', '-alpha2'][Math.floor(random() * 3)]! : '';
  return `${major}.${minor}.${patch}${pre}`;
}

/** Every version of one package (tagged then dev), deterministic from its seed. */
export function packageVersions(pkg: CorpusPackage): VersionData[] {
  const random = createRandom(pkg.seed);
  const [vendor] = pkg.name.split('/');
  const repoUrl = `https://git.example.test/${pkg.name}.git`;
  const shared = {
    description: `The ${pkg.name} package: ${WORDS.slice(0, 3 + Math.floor(random() * 8)).join(', ')}.`,
    keywords: WORDS.slice(Math.floor(random() * 10), 12 + Math.floor(random() * 8)),
    homepage: `https://example.test/${pkg.name}`,
    license: [LICENSES[Math.floor(random() * LICENSES.length)]!],
    authors: [{ name: `Maintainer of ${vendor}`, email: `team@${vendor}.example.test`, role: 'Developer' }],
    type: 'library',
    support: { issues: `https://git.example.test/${pkg.name}/issues`, source: `https://git.example.test/${pkg.name}` },
  };
  // Nested values equal between neighbours are shared objects, as a real dumper's
  // would be equal: the minifier's comparison then stops at the reference check.
  const autoload = { 'psr-4': { [`${vendor}\\Pkg${pkg.seed % 1000}\\`]: 'src/' } };
  const requireCache = new Map<string, VersionData>();
  const requireFor = (php: string, json: boolean): VersionData => {
    const key = `${php}|${json}`;
    let value = requireCache.get(key);
    if (value === undefined) {
      value = json ? { php, 'ext-json': '*' } : { php };
      requireCache.set(key, value);
    }
    return value;
  };
  const requireDevCache = new Map<number, VersionData>();
  const requireDevFor = (major: number): VersionData => {
    let value = requireDevCache.get(major);
    if (value === undefined) {
      value = { 'phpunit/phpunit': `^${major}.0` };
      requireDevCache.set(major, value);
    }
    return value;
  };
  const versions: VersionData[] = [];
  const seen = new Set<string>();
  let phpFloor = 7.2;
  let time = 1_500_000_000_000 + Math.floor(random() * 1e11);
  for (let n = 0; versions.length < pkg.tagged; n++) {
    const version = taggedVersion(n, random);
    if (seen.has(version)) continue;
    seen.add(version);
    if (random() < 0.08) phpFloor = Math.min(8.3, Math.round((phpFloor + 0.1) * 10) / 10);
    time += Math.floor(random() * 30 * 86_400_000);
    const reference = gitReference(random);
    versions.push({
      description: shared.description,
      keywords: shared.keywords,
      homepage: shared.homepage,
      license: shared.license,
      authors: shared.authors,
      type: shared.type,
      support: shared.support,
      version,
      source: { type: 'git', url: repoUrl, reference },
      dist: { type: 'zip', url: `https://dist.example.test/${pkg.name}/${reference}.zip`, reference, shasum: '' },
      require: requireFor(`>=${phpFloor.toFixed(1)}`, Math.floor(n / 12) % 3 === 0),
      'require-dev': requireDevFor(9 + Math.floor(n / 60)),
      autoload,
      time: composerTime(time),
    });
  }
  for (let d = 0; d < pkg.dev; d++) {
    const reference = gitReference(random);
    versions.push({
      ...shared,
      version: BRANCHES[d % BRANCHES.length]!,
      source: { type: 'git', url: repoUrl, reference },
      dist: { type: 'zip', url: `https://dist.example.test/${pkg.name}/${reference}.zip`, reference, shasum: '' },
      require: requireFor(`>=${phpFloor.toFixed(1)}`, false),
      time: composerTime(time + d * 3_600_000),
    });
  }
  return versions;
}

/** The repository files of one package: its p2 file and, with dev branches, its ~dev file. */
export function renderCorpusPackage(pkg: CorpusPackage): Array<{ path: string; content: Buffer }> {
  const rendered = renderPackage(pkg.name, packageVersions(pkg));
  const files: Array<{ path: string; content: Buffer }> = [];
  if (rendered.tagged !== undefined) files.push({ path: `p2/${pkg.name}.json`, content: rendered.tagged });
  if (rendered.dev !== undefined) files.push({ path: `p2/${pkg.name}~dev.json`, content: rendered.dev });
  return files;
}

/** Writes the corpus as a Composer repository tree under `dir` (packages.json last). */
export async function writeCorpusTree(dir: string, corpus: Corpus, options: { concurrency?: number } = {}): Promise<CorpusTree> {
  const concurrency = options.concurrency ?? 64;
  // The promise, not a flag: a second worker on the same vendor must wait for
  // the first one's mkdir to finish, not just to start.
  const madeDirs = new Map<string, Promise<unknown>>();
  const paths: string[] = [];
  let bytes = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < corpus.packages.length) {
      const pkg = corpus.packages[next++]!;
      const vendorDir = join(dir, 'p2', pkg.name.split('/')[0]!);
      let made = madeDirs.get(vendorDir);
      if (!made) {
        made = mkdir(vendorDir, { recursive: true });
        madeDirs.set(vendorDir, made);
      }
      await made;
      for (const file of renderCorpusPackage(pkg)) {
        await writeFile(join(dir, file.path), file.content);
        paths.push(file.path);
        bytes += file.content.length;
      }
    }
  };
  await mkdir(join(dir, 'p2'), { recursive: true });
  await Promise.all(Array.from({ length: concurrency }, worker));
  const root = renderRootPackagesJson({ availablePackages: corpus.packages.map((pkg) => pkg.name) });
  await writeFile(join(dir, 'packages.json'), root);
  paths.push('packages.json');
  bytes += root.length;
  paths.sort();
  return { dir, paths, p2Paths: paths.filter((path) => path.startsWith('p2/')), bytes };
}
