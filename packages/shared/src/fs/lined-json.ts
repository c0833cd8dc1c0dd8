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
  const lines = linesOf(body);
  const first = lines.next();
  if (first.done === true || first.value.last) return undefined;
  return yield* linedItemsAfterHead(first.value.text, lines);
}

/** A line of a document, and whether it is the last (no newline after it). */
export interface DocumentLine {
  text: string;
  last: boolean;
}

/** The lines of `body`, split at `\n`. */
function* linesOf(body: Buffer): Generator<DocumentLine, void> {
  for (let start = 0; ;) {
    const end = body.indexOf(10, start);
    yield { text: body.toString('utf8', start, end === -1 ? body.length : end), last: end === -1 };
    if (end === -1) return;
    start = end + 1;
  }
}

/**
 * The items of a lined document whose head line was `head`, from its following `lines` (a reader that has the
 * document in pieces, not in one buffer, gives them one by one); undefined when `head` is not a lined head.
 * Exactly the layout the writer makes, so a line-wise read accepts no document JSON.parse would refuse: item
 * lines end with ',' except the last; the only empty line is that of an empty array.
 */
export function* linedItemsAfterHead(head: string, lines: Iterator<DocumentLine, void>): Generator<unknown, LinedJsonHead | undefined> {
  if (!head.startsWith('{') || !head.endsWith(':[')) return undefined;
  let index = 0;
  let lastHadComma = false;
  let afterEmpty = false;
  for (;;) {
    const next = lines.next();
    if (next.done === true) throw new SyntaxError('lined JSON document: the last line is not "]}" (cut short?)');
    const { text: line, last } = next.value;
    if (afterEmpty && !last) throw new SyntaxError('lined JSON document: an empty line among items');
    if (last) {
      if (line !== ']}') throw new SyntaxError('lined JSON document: the last line is not "]}" (cut short?)');
      if (lastHadComma) throw new SyntaxError('lined JSON document: a comma after the last item');
      return { line: head };
    }
    if (line === '') {
      if (index > 0) throw new SyntaxError('lined JSON document: an empty line among items');
      afterEmpty = true;
    } else {
      if (index > 0 && !lastHadComma) throw new SyntaxError(`lined JSON document: item ${index - 1} has no comma after it`);
      lastHadComma = line.endsWith(',');
      index++;
      yield JSON.parse(lastHadComma ? line.slice(0, -1) : line);
    }
  }
}

/** The fields of a head line, parsed (`{"seq":7,"entries":[` -> {seq: 7}). */
export function parseLinedJsonHead(head: LinedJsonHead): Record<string, unknown> {
  const open = head.line.lastIndexOf(',"');
  const fields = open === -1 ? '{}' : `${head.line.slice(0, open)}}`;
  return JSON.parse(fields) as Record<string, unknown>;
}
