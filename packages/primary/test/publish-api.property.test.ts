import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES, isComposerPackageName } from '@metasync/shared';
import { parseP2File } from '../src/composer/render.js';
import { startTestPrimary, TEST_TOKEN, type TestPrimary } from './primary-fixture.js';

/**
 * The publish API over generated input, on a real primary core and its full
 * app (auth hook, body parser, error handlers): no body, name or version
 * string produces a 5xx; every rejection is a 4xx whose JSON names `code`
 * (a registered one, with that code's status), `field` and `rule`; a rejected
 * call leaves the head seq where it was; an accepted one commits exactly one
 * generation whose p2 file holds only the named package.
 */
let primary: TestPrimary;
beforeAll(async () => {
  primary = await startTestPrimary();
});
afterAll(async () => {
  await primary.close();
});

const auth = { authorization: `Bearer ${TEST_TOKEN}` };

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

/** The last calls with the head before and after each, for the message when a head moves unexpectedly. */
const recent: string[] = [];

async function call(method: 'PUT' | 'POST' | 'DELETE', url: string, payload?: string, contentType = 'application/json'): Promise<Answer> {
  const headBefore = primary.core.publisher.headSeq();
  const response = await primary.app.inject({
    method,
    url,
    headers: { ...auth, ...(payload === undefined ? {} : { 'content-type': contentType }) },
    ...(payload === undefined ? {} : { payload }),
  });
  let body: Record<string, unknown> = {};
  try {
    body = response.json();
  } catch {
    body = { unparsable: response.body.slice(0, 200) };
  }
  recent.push(
    `${method} ${url.slice(0, 80)} ${JSON.stringify(payload ?? '').slice(0, 80)} -> ${response.statusCode} head ${headBefore} -> ${primary.core.publisher.headSeq()}`,
  );
  if (recent.length > 8) recent.shift();
  return { status: response.statusCode, body };
}

/** The contract for any answer; returns true when the call was accepted. */
function expectWellFormed(answer: Answer, headBefore: number, context: string): boolean {
  const where = `${context} -> ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`;
  expect(answer.status, where).toBeLessThan(500);
  if (answer.status < 300) {
    expect(answer.body.seq, where).toBe(primary.core.publisher.headSeq());
    expect(answer.body.seq as number, where).toBeGreaterThanOrEqual(headBefore);
    return true;
  }
  expect(answer.status, where).toBeGreaterThanOrEqual(400);
  const code = answer.body.code;
  expect(typeof code === 'string' && code in ERROR_CODES, where).toBe(true);
  expect(ERROR_CODES[code as keyof typeof ERROR_CODES].status, where).toBe(answer.status);
  expect(typeof answer.body.field, where).toBe('string');
  expect(typeof answer.body.rule, where).toBe('string');
  expect(primary.core.publisher.headSeq(), `${where}: a rejected call changed the head; recent calls:\n${recent.join('\n')}`).toBe(
    headBefore,
  );
  return false;
}

async function expectOnlyItsPackage(name: string): Promise<void> {
  for (const path of [`p2/${name}.json`, `p2/${name}~dev.json`]) {
    const entry = primary.core.publisher.getEntry(path);
    if (entry === undefined) continue;
    const document = JSON.parse((await primary.core.publisher.readObject(entry.sha256)).toString('utf8')) as {
      packages: Record<string, unknown>;
    };
    expect(Object.keys(document.packages)).toEqual([name]);
    expect(parseP2File(name, await primary.core.publisher.readObject(entry.sha256), path).every((v) => v.name === name)).toBe(true);
  }
}

// Names: valid ones, near misses (uppercase, dots, traversal, encodings), and anything.
const nameSegment = fc.oneof(
  fc.stringMatching(/^[a-z0-9]([_.-]?[a-z0-9]+){0,3}$/),
  fc.constantFrom('..', '.', '%2e%2e', 'Acme', 'a--b', 'a__b', '-a', 'a.', '', '%00', 'a%2fb', '..%2f..', 'x'.repeat(300)),
  fc.string({ maxLength: 12 }),
);
const encodeSegment = (s: string, raw: boolean): string => (raw ? s : encodeURIComponent(s));

const versionString = fc.oneof(
  fc.constantFrom(
    '1.0.0',
    'v2.3',
    '1.0.0-beta1',
    'dev-main',
    '1.x-dev',
    '2.0.0-RC2',
    'master',
    '1.0.0+build',
    '',
    ' ',
    'not a version',
    '1.0.0.0.0',
    '9'.repeat(300),
    '__unset',
    'dev-',
    'dev-a b',
  ),
  fc.tuple(fc.nat(99), fc.nat(99), fc.nat(99)).map(([a, b, c]) => `${a}.${b}.${c}`),
  fc.string({ maxLength: 20 }),
);
const location = fc.oneof(
  fc.record({ type: fc.constantFrom('zip', 'git'), url: fc.webUrl(), reference: fc.stringMatching(/^[0-9a-f]{40}$/) }),
  fc.record({ type: fc.oneof(fc.constant(''), fc.jsonValue()), url: fc.jsonValue() }, { requiredKeys: [] }),
  fc.jsonValue(),
);
/** Version objects that are often nearly valid, so validation is reached deep, not only at the first check. */
const versionObject = fc.record(
  {
    version: fc.oneof({ weight: 5, arbitrary: versionString }, { weight: 1, arbitrary: fc.jsonValue() }),
    dist: location,
    source: location,
    name: fc.oneof(fc.constant('acme/prop'), fc.string({ maxLength: 10 }), fc.constant(null)),
    require: fc.oneof(fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 })), fc.jsonValue()),
    license: fc.oneof(fc.string({ maxLength: 5 }), fc.array(fc.string({ maxLength: 5 })), fc.jsonValue()),
    description: fc.oneof(fc.string(), fc.constant('__unset'), fc.constant(null), fc.jsonValue()),
    extra: fc.jsonValue({ maxDepth: 40 }),
  },
  { requiredKeys: ['version'] },
);
/** A valid version object with at most one field replaced by a hostile value: most are accepted, each rejection pinpoints one rule. */
const validVersion = fc.record({
  version: fc.oneof(
    fc.constantFrom('1.0.0', 'v2.3', '1.0.0-beta1', 'dev-main', '1.x-dev', '2.0.0-RC2'),
    fc.tuple(fc.nat(99), fc.nat(99), fc.nat(99)).map(([a, b, c]) => `${a}.${b}.${c}`),
  ),
  dist: fc.record({ type: fc.constant('zip'), url: fc.webUrl(), reference: fc.stringMatching(/^[0-9a-f]{40}$/) }),
  description: fc.string({ maxLength: 30 }),
  require: fc.dictionary(fc.stringMatching(/^[a-z]{1,5}\/[a-z]{1,5}$/), fc.constantFrom('^1.0', '*', '>=2 <3')),
});
const nearlyValidVersion = fc
  .tuple(
    validVersion,
    fc.option(
      fc.tuple(
        fc.constantFrom('version', 'dist', 'description', 'require', 'name', 'license', 'source', 'time'),
        fc.oneof(fc.jsonValue(), versionString, location),
      ),
      { freq: 2 },
    ),
  )
  .map(([version, mutation]) => (mutation === null ? version : { ...version, [mutation[0]]: mutation[1] }));
const body = fc.oneof(
  { weight: 4, arbitrary: fc.record({ versions: fc.array(nearlyValidVersion, { minLength: 1, maxLength: 4 }) }) },
  { weight: 2, arbitrary: nearlyValidVersion },
  { weight: 2, arbitrary: fc.record({ versions: fc.array(versionObject, { maxLength: 6 }) }) },
  { weight: 2, arbitrary: versionObject },
  { weight: 1, arbitrary: fc.jsonValue() },
);

// Hundreds of durable publishes per property (a journal fsync each): 20 s was too little on a busy 2-core box.
describe('publish API (property)', { timeout: 90_000 }, () => {
  it('answers any JSON body with a success or a 4xx naming code, field and rule, and a rejection changes nothing', async () => {
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(body, fc.constantFrom('PUT', 'POST'), async (payload, method) => {
        const headBefore = primary.core.publisher.headSeq();
        const url = method === 'PUT' ? '/api/v1/packages/acme/prop' : '/api/v1/packages/acme/prop/versions';
        const answer = await call(method, url, JSON.stringify(payload));
        if (expectWellFormed(answer, headBefore, `${method} ${JSON.stringify(payload).slice(0, 300)}`)) {
          accepted++;
          await expectOnlyItsPackage('acme/prop');
        }
      }),
      { numRuns: 200 },
    );
    // The generator reaches acceptance too, so the property is not only about rejections.
    expect(accepted).toBeGreaterThan(0);
  });

  it('answers any name in the URL with a success or a well-formed 4xx, accepting only Composer package names', async () => {
    await fc.assert(
      fc.asyncProperty(
        nameSegment,
        nameSegment,
        fc.boolean(),
        fc.constantFrom('PUT', 'POST', 'DELETE'),
        async (vendor, name, raw, method) => {
          const headBefore = primary.core.publisher.headSeq();
          const base = `/api/v1/packages/${encodeSegment(vendor, raw)}/${encodeSegment(name, raw)}`;
          const validVersion = { version: '1.0.0', dist: { type: 'zip', url: 'https://example.org/x.zip', reference: 'abc' } };
          let answer: Answer;
          try {
            answer =
              method === 'PUT'
                ? await call('PUT', base, JSON.stringify({ versions: [validVersion] }))
                : method === 'POST'
                  ? await call('POST', `${base}/versions`, JSON.stringify(validVersion))
                  : await call('DELETE', base);
          } catch (err) {
            // light-my-request refuses some raw URLs before they reach the server; nothing was sent.
            expect((err as Error).message).toMatch(/url|URI|invalid/i);
            return;
          }
          // HTTP clients (and inject) parse the URL first: `.`/`..` segments are resolved (such a call
          // may not reach the API at all), surrounding spaces are trimmed and inner ones encoded. The
          // name the server judged is the one in the URL as sent, not the generated string.
          const sent = new URL(base, 'http://primary.invalid').pathname;
          if (!sent.startsWith('/api/v1/packages/')) {
            expect(answer.status).toBeLessThan(500);
            expect(primary.core.publisher.headSeq()).toBe(headBefore);
            return;
          }
          const ok = expectWellFormed(answer, headBefore, `${method} ${base}`);
          if (ok) {
            const full = sent.slice('/api/v1/packages/'.length).split('/').map(decodeURIComponent).join('/');
            expect(isComposerPackageName(full), `${base} was accepted`).toBe(true);
            expect(answer.body.package).toBe(full);
            if (method !== 'DELETE') await expectOnlyItsPackage(full);
          }
        },
      ),
      // A CI counterexample first: a raw trailing space is trimmed by the client, so `0/a` is what was published.
      { numRuns: 120, examples: [['0', 'a ', true, 'PUT']] },
    );
  });

  it('answers bodies that are not JSON, or not declared as JSON, with a well-formed 4xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 200 }),
          fc.string({ unit: 'binary', maxLength: 200 }),
          fc.jsonValue().map((v) => JSON.stringify(v).slice(0, -1)),
        ),
        fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1', ''),
        async (payload, contentType) => {
          const headBefore = primary.core.publisher.headSeq();
          const answer = await call('PUT', '/api/v1/packages/acme/raw', payload, contentType);
          // A string that happens to be a valid body may be accepted; anything else is a clean 4xx.
          expectWellFormed(answer, headBefore, `PUT ${contentType} ${JSON.stringify(payload).slice(0, 200)}`);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('answers DELETE of any version string with a success or a well-formed 4xx', async () => {
    await call(
      'PUT',
      '/api/v1/packages/acme/del',
      JSON.stringify({
        versions: [
          { version: '1.0.0', dist: { type: 'zip', url: 'https://example.org/x.zip' } },
          { version: '2.0.0', dist: { type: 'zip', url: 'https://example.org/y.zip' } },
        ],
      }),
    );
    await fc.assert(
      fc.asyncProperty(versionString, async (version) => {
        const headBefore = primary.core.publisher.headSeq();
        const answer = await call('DELETE', `/api/v1/packages/acme/del/versions/${encodeURIComponent(version)}`);
        expectWellFormed(answer, headBefore, `DELETE version ${JSON.stringify(version)}`);
      }),
      { numRuns: 150 },
    );
  });
});

describe('publish API regressions found by the properties above', () => {
  it('names field and rule when deleting a version the package does not have (counterexample "0.0.0")', async () => {
    await call(
      'PUT',
      '/api/v1/packages/acme/reg',
      JSON.stringify({ versions: [{ version: '1.0.0', dist: { type: 'zip', url: 'https://example.org/x.zip' } }] }),
    );
    const headBefore = primary.core.publisher.headSeq();
    const answer = await call('DELETE', '/api/v1/packages/acme/reg/versions/0.0.0');
    expect(answer.status).toBe(404);
    expect(answer.body).toMatchObject({ code: 'METASYNC_ERR_PACKAGE_NOT_FOUND', field: 'version', rule: 'exists' });
    expect(primary.core.publisher.headSeq()).toBe(headBefore);
    const missing = await call('DELETE', '/api/v1/packages/acme/never-published');
    expect(missing.body).toMatchObject({ code: 'METASYNC_ERR_PACKAGE_NOT_FOUND', field: 'name', rule: 'exists' });
  });

  it('names field and rule for a publish URL with a malformed percent-escape (counterexample ["a","%"])', async () => {
    const headBefore = primary.core.publisher.headSeq();
    const answer = await call('PUT', '/api/v1/packages/a/%', JSON.stringify({ versions: [] }));
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ code: 'METASYNC_ERR_PATH_INVALID', field: 'path', rule: 'percent-encoding' });
    expect(primary.core.publisher.headSeq()).toBe(headBefore);
  });
});
