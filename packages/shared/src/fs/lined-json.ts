/**
 * Large JSON documents of the shape `{<fields>,"<name>":[<items>]}` written one
 * item per line:
 *
 *   {"seq":7,"time":1700000000000,"entries":[
 *   <item 0>,
 *   <item 1>
 *   ]}
 *
 * Still one JSON document (newlines are whitespace): any reader may parse it
 * whole. The layout lets its owner write it from a compact table and read it
 * back an item at a time, never holding every item as a JS object at once
 * (a million items parsed whole cost several hundred MB of objects and strings
 * beyond the bytes). Used for the primary's snapshot and the mirror's index base.
 */

/** The head line: the document's fields up to and including `"<name>":[` (no newline inside). */
export function linedJsonHead(fields: string, arrayName: string): string {
  return `{${fields}${fields === '' ? '' : ','}${JSON.stringify(arrayName)}:[\n`;
}

export const LINED_JSON_TAIL = '\n]}';

/** Separator written before every item but the first. */
export const LINED_JSON_SEPARATOR = ',\n';

export interface LinedJsonHead {
  /** The document's head line without its newline, e.g. `{"seq":7,"time":1,"entries":[`. */
  line: string;
}

/**
 * Reads a lined document: calls `visit` with each item parsed alone and returns
 * the head line, or returns undefined (visiting nothing) when `body` is not in
 * the lined layout (its first line does not end with `:[`), so the caller parses
 * it whole. Throws on a damaged body (an item line that does not parse, a
 * missing comma or `]}` line): what it accepts, JSON.parse accepts too.
 */
export function decodeLinedJson(body: Buffer, visit: (item: unknown, index: number) => void): LinedJsonHead | undefined {
  const items = linedItems(body);
  for (let index = 0; ; index++) {
    const next = items.next();
    if (next.done === true) return next.value;
    visit(next.value, index);
  }
}

/**
 * decodeLinedJson for a daemon that serves meanwhile: awaits `turn()` (loop-slices.ts) every 1,024 items, so
 * a million-item document does not hold the event loop for the seconds its parse takes. `body` must not
 * change until it resolves.
 */
export async function decodeLinedJsonInSlices(
  body: Buffer,
  visit: (item: unknown, index: number) => void,
  turn: () => Promise<void> | undefined,
): Promise<LinedJsonHead | undefined> {
  const items = linedItems(body);
  for (let index = 0; ; index++) {
    const next = items.next();
    if (next.done === true) return next.value;
    visit(next.value, index);
    if ((index & 1023) === 1023) await turn();
  }
}

/** Each item of a lined document, parsed; returns its head line, or undefined (no item) when not lined. */
function* linedItems(body: Buffer): Generator<unknown, LinedJsonHead | undefined> {
  const firstBreak = body.indexOf(10);
  if (firstBreak === -1) return undefined;
  const head = body.toString('utf8', 0, firstBreak);
  if (!head.startsWith('{') || !head.endsWith(':[')) return undefined;
  // Exactly the layout the writer makes, so a line-wise read accepts no document JSON.parse would refuse:
  // item lines end with ',' except the last; the only empty line is that of an empty array.
  let index = 0;
  let lastHadComma = false;
  let start = firstBreak + 1;
  for (;;) {
    const end = body.indexOf(10, start);
    const line = body.toString('utf8', start, end === -1 ? body.length : end);
    if (end === -1) {
      if (line !== ']}') throw new SyntaxError('lined JSON document: the last line is not "]}" (cut short?)');
      if (lastHadComma) throw new SyntaxError('lined JSON document: a comma after the last item');
      return { line: head };
    }
    if (line === '') {
      if (index > 0 || body.indexOf(10, end + 1) !== -1) throw new SyntaxError('lined JSON document: an empty line among items');
    } else {
      if (index > 0 && !lastHadComma) throw new SyntaxError(`lined JSON document: item ${index - 1} has no comma after it`);
      lastHadComma = line.endsWith(',');
      index++;
      yield JSON.parse(lastHadComma ? line.slice(0, -1) : line);
    }
    start = end + 1;
  }
}

/** The fields of a head line, parsed (`{"seq":7,"entries":[` -> {seq: 7}). */
export function parseLinedJsonHead(head: LinedJsonHead): Record<string, unknown> {
  const open = head.line.lastIndexOf(',"');
  const fields = open === -1 ? '{}' : `${head.line.slice(0, open)}}`;
  return JSON.parse(fields) as Record<string, unknown>;
}
