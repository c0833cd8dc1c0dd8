import { describe, expect, it } from 'vitest';
import {
  decodeLinedJson,
  decodeLinedJsonInSlices,
  linedJsonHead,
  LINED_JSON_SEPARATOR,
  LINED_JSON_TAIL,
  parseLinedJsonHead,
} from './lined-json.js';

function lined(items: unknown[]): string {
  return `${linedJsonHead('"seq":3', 'items')}${items.map((item) => JSON.stringify(item)).join(LINED_JSON_SEPARATOR)}${LINED_JSON_TAIL}`;
}

function decode(text: string): { head: Record<string, unknown> | undefined; items: unknown[] } {
  const items: unknown[] = [];
  const head = decodeLinedJson(Buffer.from(text), (item) => items.push(item));
  return { head: head === undefined ? undefined : parseLinedJsonHead(head), items };
}

describe('lined JSON', () => {
  it.each([[[]], [[1]], [[{ a: 'x' }, [2, 3], 'z']]])('reads what JSON.parse reads, an item at a time (%j)', (items) => {
    const text = lined(items);
    expect(JSON.parse(text)).toEqual({ seq: 3, items });
    expect(decode(text)).toEqual({ head: { seq: 3 }, items });
  });

  it('in slices, reads the same items and awaits a turn every 1,024 of them, and refuses the same bodies', async () => {
    const items = Array.from({ length: 3_000 }, (_, index) => ({ index }));
    const seen: unknown[] = [];
    let turns = 0;
    const head = await decodeLinedJsonInSlices(
      Buffer.from(lined(items)),
      (item) => seen.push(item),
      () => {
        turns++;
        return undefined;
      },
    );
    expect(head === undefined ? undefined : parseLinedJsonHead(head)).toEqual({ seq: 3 });
    expect(seen).toEqual(items);
    expect(turns).toBe(2);
    const cut = lined(items).slice(0, -3);
    await expect(
      decodeLinedJsonInSlices(
        Buffer.from(cut),
        () => undefined,
        () => undefined,
      ),
    ).rejects.toThrow(SyntaxError);
  });

  it('leaves a document in another layout to the caller', () => {
    expect(decode(JSON.stringify({ seq: 3, items: [1, 2] })).head).toBeUndefined();
  });

  it('refuses every body JSON.parse would refuse: a missing or trailing comma, a cut tail', () => {
    const head = linedJsonHead('"seq":3', 'items');
    for (const text of [`${head}1\n2${LINED_JSON_TAIL}`, `${head}1,\n2,${LINED_JSON_TAIL}`, `${head}1,\n2`]) {
      expect(() => JSON.parse(text), text).toThrow();
      expect(() => decode(text), text).toThrow(SyntaxError);
    }
  });

  it('refuses a layout the writer never makes rather than reading it some other way (blank lines among items)', () => {
    const head = linedJsonHead('"seq":3', 'items');
    for (const text of [`${head}1,\n\n2${LINED_JSON_TAIL}`, `${head}\n${LINED_JSON_TAIL}`]) {
      expect(() => decode(text), text).toThrow(SyntaxError);
    }
  });
});
