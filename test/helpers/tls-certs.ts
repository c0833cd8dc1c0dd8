import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Test certificates made with the real `openssl`: a CA, server certificates it
 * signs for 127.0.0.1 (subjectAltName IP:127.0.0.1, a chosen serial), and a
 * second, unrelated CA that must never be accepted. Everything lives in one temp
 * dir that `remove()` deletes.
 */
export interface TlsFixtures {
  dir: string;
  /** PEM of the CA that signs the server certificates. */
  caFile: string;
  /** PEM of an unrelated CA. */
  otherCaFile: string;
  /** A server certificate (serial 1001) and its key. */
  certFile: string;
  keyFile: string;
  /** A new pair signed by the CA with `serialHex`, written to `<name>.pem` / `<name>.key`. */
  issue(name: string, serialHex: string): { certFile: string; keyFile: string };
  remove(): Promise<void>;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000 });
}

function makeCa(dir: string, name: string): void {
  openssl(
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'].concat([
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.pem`,
      '-days',
      '2',
      '-subj',
      `/CN=metasync test ${name}`,
    ]),
    dir,
  );
}

export async function makeTlsFixtures(): Promise<TlsFixtures> {
  const dir = await mkdtemp(join(tmpdir(), 'metasync-tls-'));
  makeCa(dir, 'ca');
  makeCa(dir, 'other-ca');
  await writeFile(
    join(dir, 'server.ext'),
    'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n',
  );
  const issue = (name: string, serialHex: string): { certFile: string; keyFile: string } => {
    openssl(
      ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'].concat([
        '-keyout',
        `${name}.key`,
        '-out',
        `${name}.csr`,
        '-subj',
        '/CN=127.0.0.1',
      ]),
      dir,
    );
    openssl(
      ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', `0x${serialHex}`].concat([
        '-days',
        '2',
        '-extfile',
        'server.ext',
        '-out',
        `${name}.pem`,
      ]),
      dir,
    );
    return { certFile: join(dir, `${name}.pem`), keyFile: join(dir, `${name}.key`) };
  };
  const first = issue('server', '1001');
  return {
    dir,
    caFile: join(dir, 'ca.pem'),
    otherCaFile: join(dir, 'other-ca.pem'),
    ...first,
    issue,
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
