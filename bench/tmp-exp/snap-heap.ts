// Heap of parsing a 1M-entry snapshot document (measurement only).
import { createHash } from 'node:crypto';
import { parseSnapshotDocument } from '../../packages/mirror/src/sync/parse-document.ts';
const n = Number(process.argv[2] ?? 1_000_000);
function makeBody(): Buffer {
  const parts: Buffer[] = [Buffer.from('{"kind":"snapshot","seq":7,"time":1765000000000,"entries":[\n')];
  for (let i = 0; i < n; i++) {
    const sha = createHash('sha256').update(String(i)).digest('hex');
    parts.push(Buffer.from(JSON.stringify({ path: `p2/vendor${i % 10000}/package-${i}.json`, sha256: sha, size: 5000 + (i % 1000), mtime: 1765000000000 + i }) + (i + 1 < n ? ',\n' : '\n')));
  }
  parts.push(Buffer.from(']}'));
  return Buffer.concat(parts);
}
const body = makeBody();
const gc = (globalThis as { gc?: () => void }).gc!;
const used = () => { gc(); gc(); return Math.round(process.memoryUsage().heapUsed / 1e6); };
const h0 = used();
const snap = parseSnapshotDocument(body, 'snapshot');
const h1 = used();
const wanted = new Map<string, number>();
for (const e of snap.entries) wanted.set(e.sha256, e.size);
const h2 = used();
const absent = [...wanted].map(([sha256, size]) => ({ sha256, size }));
const h3 = used();
const kept = new Set(snap.entries.map((e) => e.sha256));
const h4 = used();
console.log({ body: body.length, h0, parsedMB: h1 - h0, wantedMapMB: h2 - h1, absentMB: h3 - h2, keptSetMB: h4 - h3, keep: [snap.entries.length, wanted.size, absent.length, kept.size] });
