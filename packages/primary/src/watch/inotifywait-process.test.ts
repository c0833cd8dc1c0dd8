import { describe, expect, it } from 'vitest';
import { chooseInotifywait, startInotifywait } from './inotifywait-process.js';

/**
 * What the primary makes of inotifywait's output, given crafted bytes: a stand-in child (node) that reads its
 * list, says "Watches established." and then prints records as `%w%0%f%0%e%0` does, in chunks cut anywhere
 * (inside a field, inside a UTF-8 character), names holding what a file name may hold (newline, comma, space),
 * an event about a watched directory itself, an overflow, and then a garbled record.
 */
const ROOT = '/src';
const STAND_IN = `
const records = ${JSON.stringify([
  ['/src/p2/', 'a b,c\nd.json', 'CREATE'],
  ['/src/p2/vendor/', 'é.json', 'MODIFY'],
  ['/src/p2/', 'vendor', 'ATTRIB,ISDIR'],
  ['/src/p2/vendor/', '', 'ATTRIB,ISDIR'],
  ['', '', 'Q_OVERFLOW'],
  ['/src/', 'x.json', 'DELETE'],
])};
const bytes = Buffer.from(records.map((r) => r.join('\\0') + '\\0').join(''));
const garbled = Buffer.from('/src/p2/\\0y.json\\0MOD\\u0001IFY\\0');
process.stdin.resume();
process.stdin.on('end', async () => {
  process.stderr.write('Setting up watches.\\nWatches established.\\n');
  // Cut 3 bytes at a time: fields, records and the two bytes of "é" all fall across chunks.
  for (let at = 0; at < bytes.length; at += 3) {
    process.stdout.write(bytes.subarray(at, at + 3));
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await new Promise((resolve) => setTimeout(resolve, 50));
  process.stdout.write(garbled);
  setInterval(() => undefined, 1000);
});
`;

describe('inotifywait output', () => {
  it('turns records cut anywhere into events, drops events about a directory itself, reports an overflow, and ends at a garbled record', async () => {
    const events: Array<[string, string, string]> = [];
    let overflows = 0;
    const exits: string[] = [];
    const child = startInotifywait({
      rootReal: ROOT,
      directories: ['/src/', '/src/p2/', '/src/p2/vendor/'],
      command: [process.execPath, '-e', STAND_IN, '--'],
      onEvent: (dirRel, name, eventType) => events.push([dirRel, name, eventType]),
      onOverflow: () => overflows++,
      onExit: (message) => exits.push(message),
    });
    expect(await child.established).toBe(true);
    const deadline = Date.now() + 10_000;
    while (exits.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(events).toEqual([
      ['p2', 'a b,c\nd.json', 'rename'],
      ['p2/vendor', 'é.json', 'change'],
      ['p2', 'vendor', 'rename'], // as fs.watch: a subdirectory's attributes are a 'rename' (tree-events looks at it)
      ['', 'x.json', 'rename'],
    ]);
    expect(overflows).toBe(1);
    expect(exits).toHaveLength(1);
    expect(exits[0]).toMatch(/^inotifywait printed an unreadable event/);
    expect(child.ended()).toBe(true);
  });

  it('refuses --source-watcher inotifywait with a cap, which only fs.watch keeps exactly', () => {
    expect(() => chooseInotifywait({ watcher: 'inotifywait', maxWatches: 10, inotifywaitCommand: ['inotifywait'] })).toThrow(
      /--source-max-watches/,
    );
    expect(chooseInotifywait({ watcher: 'auto', maxWatches: 10, inotifywaitCommand: ['inotifywait'] })).toBeUndefined();
    expect(chooseInotifywait({ watcher: 'auto', maxWatches: 0, inotifywaitCommand: ['inotifywait'] })).toEqual(['inotifywait']);
  });
});
