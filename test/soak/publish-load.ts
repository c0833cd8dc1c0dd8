import { publishPackage, type VersionSpec } from '../helpers/mirror-cluster.js';

/**
 * Continuous publishing through the primary's publish API (PUT of a whole
 * version list). Most publishes add a version to an existing package (so p2
 * files clients already read change under them); every `newEvery`-th creates a
 * package until `maxPackages`, so the corpus grows early and then stays put
 * (a stable corpus lets RSS settle after warm-up). Every fourth package also
 * has a dev branch, so `~dev.json` files are served too.
 */
export interface SoakPackage {
  name: string;
  hasDev: boolean;
  /** Seq of the generation of the first publish: from then on the package exists. */
  firstSeq: number;
  /** Seq and time of the latest publish of the package. */
  lastSeq: number;
  versionCount: number;
}

export interface PublishLoadOptions {
  primaryUrl: string;
  initialPackages: number;
  maxPackages: number;
  intervalMs: number;
  /** Description padding per version, so p2 files are a few KB (truncation and corruption bite). */
  padBytes: number;
  newEvery: number;
  /** Most versions kept per package: older ones roll off. */
  keepVersions: number;
  onPublished(seq: number, returnedAtMs: number): void;
  random: () => number;
}

export interface PublishLoad {
  /** Packages that exist (their first publish returned), in creation order. */
  readonly packages: readonly SoakPackage[];
  /** Publishes the initial corpus, `concurrency` at a time. */
  seed(concurrency: number): Promise<void>;
  /** Runs until `stop()`. */
  run(): Promise<void>;
  stop(): void;
  stats(): { publishes: number; failures: string[]; latenciesMs: number[] };
}

export function createPublishLoad(options: PublishLoadOptions): PublishLoad {
  const packages: SoakPackage[] = [];
  const failures: string[] = [];
  const latenciesMs: number[] = [];
  const pad = 'lorem ipsum dolor sit amet, consectetur adipiscing elit '
    .repeat(Math.ceil(options.padBytes / 56))
    .slice(0, options.padBytes);
  let created = 0;
  let publishes = 0;
  let stopped = false;
  let wake: (() => void) | undefined;

  const versionsOf = (index: number, count: number, hasDev: boolean): VersionSpec[] => {
    const first = Math.max(0, count - options.keepVersions);
    const tagged = Array.from({ length: count - first }, (_, k) => ({
      version: `1.${first + k}.0`,
      description: `p${index} v${first + k} ${pad}`,
    }));
    return hasDev ? [...tagged, { version: 'dev-main', description: `p${index} dev ${count} ${pad}` }] : tagged;
  };

  async function publishOne(pkg: SoakPackage, index: number): Promise<number> {
    const startedMs = performance.now();
    const seq = await publishPackage(options.primaryUrl, pkg.name, versionsOf(index, pkg.versionCount, pkg.hasDev));
    const returnedAtMs = Date.now();
    latenciesMs.push(performance.now() - startedMs);
    publishes++;
    options.onPublished(seq, returnedAtMs);
    return seq;
  }

  async function createOne(): Promise<void> {
    const index = created++;
    const pkg: SoakPackage = { name: `soak/pkg${index}`, hasDev: index % 4 === 0, firstSeq: 0, lastSeq: 0, versionCount: 1 };
    const seq = await publishOne(pkg, index);
    pkg.firstSeq = seq;
    pkg.lastSeq = seq;
    packages.push(pkg);
  }

  async function updateOne(): Promise<void> {
    const index = Math.floor(options.random() * packages.length);
    const pkg = packages[index]!;
    pkg.versionCount++;
    pkg.lastSeq = await publishOne(pkg, Number(pkg.name.slice('soak/pkg'.length)));
  }

  return {
    packages,
    async seed(concurrency) {
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (created < options.initialPackages) await createOne();
        }),
      );
    },
    async run() {
      for (let i = 1; !stopped; i++) {
        try {
          if (i % options.newEvery === 0 && created < options.maxPackages) await createOne();
          else await updateOne();
        } catch (err) {
          failures.push((err as Error).message.slice(0, 300));
        }
        if (stopped) break;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, options.intervalMs);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    },
    stop() {
      stopped = true;
      wake?.();
    },
    stats: () => ({ publishes, failures: [...failures], latenciesMs: [...latenciesMs] }),
  };
}
