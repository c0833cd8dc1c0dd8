import { describe, expect, it } from 'vitest';
import { isReservedPath } from './routes.js';

describe('isReservedPath', () => {
  it('reserves every path under a daemon route segment', () => {
    for (const path of [
      'health/fresh',
      'healthz',
      'metrics',
      'status',
      'status/data.json',
      'sync/v1/state',
      'sync/x',
      'api/x',
      'admin/drain',
    ]) {
      expect(isReservedPath(path), path).toBe(true);
    }
  });

  it("reserves the primary's Packagist change feed, the one route outside those segments", () => {
    expect(isReservedPath('metadata/changes.json')).toBe(true);
  });

  it('leaves repository paths alone, including packages whose names look like routes', () => {
    for (const path of [
      'packages.json',
      'p2/acme/foo.json',
      'p2/health/fresh.json',
      'p2/api/x~dev.json',
      'healthy',
      'metrics.json',
      'metadata/other.json',
    ]) {
      expect(isReservedPath(path), path).toBe(false);
    }
  });
});
