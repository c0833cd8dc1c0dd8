/**
 * The publish API's package operations. The journal stays the one source of
 * truth: a package's current versions are read back from its committed p2
 * files, changed, re-rendered, and submitted as ONE generation together with
 * the root packages.json when the set of package names changed.
 *
 *   request -> [per-package batch] read p2 files -> apply each request's change in order -> render
 *                  names changed? -> root group: p2 changes of every waiting batch
 *                                    + packages.json rendered once -> ONE submit
 *                  otherwise      -> submit(p2)
 *
 * Updates of one package never run concurrently (no lost update between
 * concurrent POSTs); requests that arrive while one runs are applied together
 * in arrival order, in one render and one submit (per-key-combiner.ts). Submits that carry packages.json run one at a time, because
 * the publisher may commit concurrent submits in any order and the last
 * packages.json committed must be the newest; requests that arrive meanwhile
 * are grouped into the next such submit, so new packages are not limited to one
 * per commit. Each request's change still lands in one generation with the root.
 */
import { metasyncError, packageKeyFromP2Path, p2PathFor, sha256Hex } from '@metasync/shared';
import type { VersionData } from '../composer/minify.js';
import { MAX_AVAILABLE_PACKAGES, packageFileChanges, parseP2File, renderPackage, renderRootPackagesJson } from '../composer/render.js';
import { normalizeVersion } from '../composer/version.js';
import { DEFAULT_API_LIMITS, type ApiLimits } from './api-validation.js';
import { createKeyedBatcher, type BatchItem } from './per-key-combiner.js';
import type { Publisher, SourceChange } from './publisher.js';

export const ROOT_PATH = 'packages.json';

export interface PublishResult {
  /** The generation that contains the change (the current head when nothing changed). */
  seq: number;
  package: string;
  /** Versions the package holds afterwards. */
  versions: number;
}

export interface PackageOperations {
  replace(name: string, versions: readonly VersionData[]): Promise<PublishResult>;
  upsertVersion(name: string, version: VersionData): Promise<PublishResult>;
  removePackage(name: string): Promise<PublishResult>;
  removeVersion(name: string, version: string): Promise<PublishResult>;
}

/** One request's change to a package's version list; `current` is undefined when it does not need it. */
interface Mutation {
  needsCurrent: boolean;
  apply(current: readonly VersionData[] | undefined): VersionData[];
}

function sameVersion(a: string, b: string): boolean {
  return a === b || (normalizeVersion(a) ?? a) === (normalizeVersion(b) ?? b);
}

export function createPackageOperations(options: { publisher: Publisher; limits?: ApiLimits }): PackageOperations {
  const { publisher } = options;
  const limits = options.limits ?? DEFAULT_API_LIMITS;
  // Package names known to the repository; undefined = not yet scanned (or invalidated).
  let names: Set<string> | undefined;
  let tooManyNames = false;
  let lastRootSha: string | undefined;

  function scanNames(): Set<string> {
    const found = new Set<string>();
    tooManyNames = false;
    for (const [path] of publisher.entries()) {
      const key = packageKeyFromP2Path(path);
      if (key === undefined) continue;
      found.add(key.replace(/~dev$/, ''));
      if (found.size > MAX_AVAILABLE_PACKAGES) {
        tooManyNames = true;
        break;
      }
    }
    return found;
  }

  async function readVersions(name: string): Promise<VersionData[]> {
    const versions: VersionData[] = [];
    for (const dev of [false, true]) {
      const path = p2PathFor(name, dev);
      const entry = publisher.getEntry(path);
      if (entry === undefined) continue;
      versions.push(...parseP2File(name, await publisher.readObject(entry.sha256), path));
    }
    return versions;
  }

  function p2Changes(name: string, versions: readonly VersionData[]): SourceChange[] {
    const rendered = renderPackage(name, versions);
    const changes: SourceChange[] = [];
    for (const { path, content } of packageFileChanges(name, rendered)) {
      const current = publisher.getEntry(path);
      if (content === undefined) {
        if (current !== undefined) changes.push({ path, deleted: true });
      } else if (current?.sha256 !== sha256Hex(content)) {
        changes.push({ path, content });
      }
    }
    return changes;
  }

  /** Adds or drops `name` from the known names; true when packages.json must change. */
  function updateNames(name: string, exists: boolean): boolean {
    names ??= scanNames();
    if (names.has(name) === exists) return false;
    if (exists) names.add(name);
    else names.delete(name);
    if (tooManyNames && !exists) names = undefined; // may have dropped under the limit: rescan next time
    return true;
  }

  function rootChange(): SourceChange | undefined {
    // A packages.json from the watched tree belongs to its generator, one from an upstream to its follower: the API leaves it alone.
    if (publisher.getEntry(ROOT_PATH)?.origin !== undefined && publisher.getEntry(ROOT_PATH)?.origin !== 'api') return undefined;
    names ??= scanNames();
    // As the publisher stores it (with --dists-url's root mirror), so the comparison with the manifest holds.
    const content = publisher.contentFor(ROOT_PATH, renderRootPackagesJson({ availablePackages: tooManyNames ? undefined : [...names] }));
    const sha = sha256Hex(content);
    lastRootSha ??= publisher.getEntry(ROOT_PATH)?.sha256;
    if (sha === lastRootSha) return undefined;
    lastRootSha = sha;
    return { path: ROOT_PATH, content };
  }

  function checkSize(name: string, versions: readonly VersionData[]): void {
    if (versions.length > limits.maxVersionsPerPackage) {
      throw metasyncError(
        'METASYNC_ERR_PACKAGE_INVALID',
        `versions: ${name} would hold ${versions.length} versions, more than ${limits.maxVersionsPerPackage}`,
        {
          field: 'versions',
          rule: 'max-items',
        },
      );
    }
  }

  /** Applies a batch of requests to one package in order; each accepted one lands in the same submit. */
  async function runBatch(name: string, batch: ReadonlyArray<BatchItem<Mutation, PublishResult>>): Promise<void> {
    let current: VersionData[] | undefined;
    const accepted: Array<{ item: BatchItem<Mutation, PublishResult>; count: number }> = [];
    for (const item of batch) {
      try {
        if (item.op.needsCurrent && current === undefined) current = await readVersions(name);
        const next = item.op.apply(current);
        checkSize(name, next);
        current = next;
        accepted.push({ item, count: next.length });
      } catch (err) {
        item.reject(err);
      }
    }
    if (accepted.length === 0 || current === undefined) return;
    const changes = p2Changes(name, current);
    const namesChanged = updateNames(name, current.length > 0);
    try {
      const { seq } = namesChanged ? await submitWithRoot(changes) : await publisher.submit(changes, 'api');
      for (const { item, count } of accepted) item.resolve({ seq, package: name, versions: count });
    } catch (err) {
      for (const { item } of accepted) item.reject(err);
    }
  }

  const enqueue = createKeyedBatcher<Mutation, PublishResult>(runBatch);

  interface RootGroup {
    changes: SourceChange[];
    waiters: Array<{ resolve: (result: { seq: number }) => void; reject: (err: unknown) => void }>;
  }
  let nextGroup: RootGroup | undefined;
  let rootSubmitting = false;

  function submitWithRoot(changes: readonly SourceChange[]): Promise<{ seq: number }> {
    return new Promise((resolve, reject) => {
      nextGroup ??= { changes: [], waiters: [] };
      nextGroup.changes.push(...changes);
      nextGroup.waiters.push({ resolve, reject });
      void pumpRootGroups();
    });
  }

  async function pumpRootGroups(): Promise<void> {
    if (rootSubmitting) return;
    rootSubmitting = true;
    try {
      while (nextGroup !== undefined) {
        const group = nextGroup;
        nextGroup = undefined;
        try {
          const root = rootChange();
          const result = await publisher.submit(root === undefined ? group.changes : [...group.changes, root], 'api');
          for (const waiter of group.waiters) waiter.resolve(result);
        } catch (err) {
          // The in-memory view may now be ahead of the journal: rebuild it from the journal next time.
          names = undefined;
          lastRootSha = undefined;
          for (const waiter of group.waiters) waiter.reject(err);
        }
      }
    } finally {
      rootSubmitting = false;
    }
  }

  return {
    replace: (name, versions) => enqueue(name, { needsCurrent: false, apply: () => [...versions] }),
    upsertVersion: (name, version) =>
      enqueue(name, {
        needsCurrent: true,
        apply: (current = []) => {
          const pretty = version.version as string;
          const index = current.findIndex((existing) => sameVersion(String(existing.version), pretty));
          return index === -1 ? [...current, version] : current.map((existing, i) => (i === index ? version : existing));
        },
      }),
    removePackage: (name) =>
      enqueue(name, {
        needsCurrent: true,
        apply: (current = []) => {
          if (current.length === 0)
            throw metasyncError('METASYNC_ERR_PACKAGE_NOT_FOUND', `package ${name} does not exist`, {
              package: name,
              field: 'name',
              rule: 'exists',
            });
          return [];
        },
      }),
    removeVersion: (name, version) =>
      enqueue(name, {
        needsCurrent: true,
        apply: (current = []) => {
          const after = current.filter((existing) => !sameVersion(String(existing.version), version));
          if (after.length === current.length) {
            throw metasyncError('METASYNC_ERR_PACKAGE_NOT_FOUND', `package ${name} has no version ${JSON.stringify(version)}`, {
              package: name,
              version,
              field: 'version',
              rule: 'exists',
            });
          }
          return after;
        },
      }),
  };
}
