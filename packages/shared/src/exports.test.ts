import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as contract from './index.js';
import * as daemon from './daemon/index.js';
import * as fs from './fs/index.js';
import * as http from './http/index.js';
import * as nodeVersion from './runtime/node-version.js';
import * as s3 from './s3/index.js';
import * as tables from './tables/index.js';

const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  exports: Record<string, { source: string; default: string }>;
};

describe('package entry points', () => {
  it('maps every subpath to a source file and the dist file tsc emits for it', () => {
    expect(Object.keys(manifest.exports).sort()).toEqual(['.', './daemon', './fs', './http', './node-version', './s3', './tables']);
    for (const [subpath, target] of Object.entries(manifest.exports)) {
      expect(target.source, subpath).toMatch(/^\.\/src\/.+\.ts$/);
      expect(target.default, subpath).toBe(target.source.replace(/^\.\/src\//, './dist/').replace(/\.ts$/, '.js'));
      expect(existsSync(new URL(`../${target.source}`, import.meta.url)), `${subpath} -> ${target.source}`).toBe(true);
    }
  });

  it('exports each helper name from exactly one subpath', () => {
    const seen = new Map<string, string>();
    for (const [subpath, names] of [
      ['daemon', Object.keys(daemon)],
      ['fs', Object.keys(fs)],
      ['http', Object.keys(http)],
      ['node-version', Object.keys(nodeVersion)],
      ['s3', Object.keys(s3)],
      ['tables', Object.keys(tables)],
    ] as const) {
      for (const name of names) {
        expect(seen.get(name), `${name} in ${subpath}`).toBeUndefined();
        seen.set(name, subpath);
      }
    }
    expect(seen.size).toBeGreaterThan(0);
  });

  it('keeps every helper out of the root entry, so the contract is only protocol and errors', () => {
    for (const helpers of [daemon, fs, http, nodeVersion, s3, tables]) {
      const names = Object.keys(helpers);
      expect(names.length).toBeGreaterThan(0);
      for (const name of names) expect(Object.keys(contract), name).not.toContain(name);
    }
  });
});
