import { SYNC_ROUTES } from '@metasync/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { publish, startTestPrimary, type TestPrimary } from './primary-fixture.js';

let primary: TestPrimary;
afterEach(async () => {
  await primary.close();
});

describe('metrics', () => {
  it('exposes generations, paths, commit latency, head seq, mirrors and publish-to-visible in Prometheus text', async () => {
    primary = await startTestPrimary();
    await publish(primary, 'p2/acme/a.json', '1');
    await primary.core.publisher.submit(
      [
        { path: 'p2/acme/b.json', content: Buffer.from('2') },
        { path: 'p2/acme/c.json', content: Buffer.from('3') },
      ],
      'api',
    );
    const { secret } = await primary.mirrorCredentials.issue('m1');
    await primary.app.inject({
      method: 'POST',
      url: SYNC_ROUTES.ack,
      headers: { authorization: `Bearer ${secret}` },
      payload: { mirrorId: 'm1', region: 'eu', url: 'https://m1.example', seq: 2, appliedAt: Date.now() },
    });
    const response = await primary.app.inject({ url: '/metrics' });
    expect(response.statusCode).toBe(200);
    const text = response.body;
    expect(text).toMatch(/^metasync_generations_total 2$/m);
    expect(text).toMatch(/^metasync_paths_published_total 3$/m);
    expect(text).toMatch(/^metasync_publish_commit_seconds_count 2$/m);
    expect(text).toMatch(/^metasync_head_seq 2$/m);
    expect(text).toMatch(/^metasync_connected_mirrors 0$/m);
    expect(text).toMatch(/^metasync_publish_visible_seconds_count 1$/m);
  });
});
