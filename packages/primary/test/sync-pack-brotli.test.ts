import { gunzipSync } from 'node:zlib';
import { SYNC_ROUTES, sha256Hex } from '@metasync/shared';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEFER_BROTLI_FROM_PATHS } from '../src/publish/publisher.js';
import { framesOf, startTestPrimary, type TestPrimary } from './primary-fixture.js';

let primary: TestPrimary;
afterEach(async () => {
  await primary.close();
});

describe('object packs asked without brotli (a bootstrapping mirror)', () => {
  it('carry each object as its gzip variant, though the primary keeps brotli variants', async () => {
    primary = await startTestPrimary();
    const textOf = (i: number): string => `{"packages":{"acme/n${i}":[]}}`.repeat(20);
    const changes = Array.from({ length: DEFER_BROTLI_FROM_PATHS }, (_, i) => ({
      path: `p2/acme/n${i}.json`,
      content: Buffer.from(textOf(i)),
    }));
    await primary.core.publisher.submit(changes, 'watch');
    await primary.core.brotliBackfill.idle();
    const shas = [0, 1].map((i) => sha256Hex(textOf(i)));
    const asked = (brotli?: boolean) =>
      primary.app.inject({
        method: 'POST',
        url: SYNC_ROUTES.objectPack,
        payload: { objects: shas, gzip: true, ...(brotli === undefined ? {} : { brotli }) },
      });
    // Absent (older mirrors) and true both mean brotli bodies with the gzip variant after them.
    for (const brotli of [undefined, true]) {
      const frames = await framesOf((await asked(brotli)).rawPayload, shas);
      expect(frames.map((frame) => [frame.header.encoding, frame.gzip === undefined])).toEqual([
        ['br', false],
        ['br', false],
      ]);
    }
    const frames = await framesOf((await asked(false)).rawPayload, shas);
    expect(frames.map((frame) => [frame.header.encoding, frame.gzip])).toEqual([
      ['gzip', undefined],
      ['gzip', undefined],
    ]);
    frames.forEach((frame, i) => expect(gunzipSync(frame.bytes).toString()).toBe(textOf(i)));
  });

  it('refuses a brotli flag that is not a boolean, saying which field', async () => {
    primary = await startTestPrimary();
    const response = await primary.app.inject({
      method: 'POST',
      url: SYNC_ROUTES.objectPack,
      payload: { objects: [sha256Hex('x')], brotli: 'no' },
    });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ code: 'METASYNC_ERR_REQUEST_INVALID', field: 'brotli' });
  });

  it('postpones the brotli backfill while packs without brotli stream: a bootstrapping mirror gets the CPU first', async () => {
    primary = await startTestPrimary();
    const postpone = vi.spyOn(primary.core.brotliBackfill, 'postpone');
    const pack = (brotli: boolean) =>
      primary.app.inject({ method: 'POST', url: SYNC_ROUTES.objectPack, payload: { objects: [sha256Hex('x')], brotli } });
    // A publish's pack (brotli asked for) does not hold it; a bootstrap's or catch-up's does.
    expect((await pack(true)).statusCode).toBe(200);
    expect(postpone).not.toHaveBeenCalled();
    expect((await pack(false)).statusCode).toBe(200);
    expect(postpone).toHaveBeenCalledTimes(1);
  });
});
