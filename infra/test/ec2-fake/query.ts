/**
 * The EC2 Query protocol's request body (`Action=...&Filter.1.Name=...`) as a
 * tree: `a.b=1` becomes {a: {b: '1'}}, numbered members (`Filter.1`, `Value.2`)
 * become arrays in index order.
 */
export type QueryValue = string | QueryTree | QueryValue[];
export interface QueryTree {
  [key: string]: QueryValue;
}

export function parseQuery(body: string): QueryTree {
  const root: QueryTree = {};
  for (const [key, value] of new URLSearchParams(body)) {
    const parts = key.split('.');
    let node: QueryTree = root;
    for (let i = 0; i < parts.length - 1; i++) {
      const part = parts[i]!;
      node[part] ??= {};
      node = node[part] as QueryTree;
    }
    node[parts[parts.length - 1]!] = value;
  }
  return listify(root) as QueryTree;
}

/** Objects whose keys are all positive integers become arrays. */
function listify(value: QueryValue): QueryValue {
  if (typeof value === 'string' || Array.isArray(value)) return value;
  const keys = Object.keys(value);
  if (keys.length > 0 && keys.every((k) => /^[1-9]\d*$/.test(k))) {
    return keys.sort((a, b) => Number(a) - Number(b)).map((k) => listify(value[k]!));
  }
  return Object.fromEntries(keys.map((k) => [k, listify(value[k]!)]));
}

export function str(value: QueryValue | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

export function tree(value: QueryValue | undefined): QueryTree | undefined {
  return typeof value === 'object' && !Array.isArray(value) ? value : undefined;
}

export function items(value: QueryValue | undefined): QueryValue[] {
  return Array.isArray(value) ? value : [];
}

export function strings(value: QueryValue | undefined): string[] {
  return items(value).filter((v): v is string => typeof v === 'string');
}
