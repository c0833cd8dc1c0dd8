import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { exitUnlessSupportedNode, nodeVersionProblem, REQUIRED_NODE_MAJOR } from './node-version.js';

const repoFile = (path: string): string => readFileSync(new URL(`../../../../${path}`, import.meta.url), 'utf8');

function fakeProcess(version: string): { proc: Parameters<typeof exitUnlessSupportedNode>[1]; stderr: string[]; exits: number[] } {
  const stderr: string[] = [];
  const exits: number[] = [];
  const proc = {
    versions: { node: version },
    execPath: '/usr/bin/node',
    stderr: { write: (text: string) => stderr.push(text) },
    exit: (code: number): never => {
      exits.push(code);
      throw new Error(`exit ${code}`);
    },
  };
  return { proc, stderr, exits };
}

describe('node version gate', () => {
  it.each(['24.0.0', '24.22.3', '25.1.0', 'v26.0.0'])('lets Node %s start', (version) => {
    expect(nodeVersionProblem({ program: 'metasync-mirror', version, execPath: '/usr/local/bin/node' })).toBeUndefined();
  });

  it.each(['20.19.1', '18.19.0', '23.11.1', 'v22.0.0', 'garbage'])(
    'refuses Node %s, naming the version needed and how to get it',
    (version) => {
      const problem = nodeVersionProblem({ program: 'metasync-mirror', version, execPath: '/usr/bin/node' });
      expect(problem).toContain('METASYNC_ERR_NODE_UNSUPPORTED');
      expect(problem).toContain('metasync-mirror needs Node.js 24 or newer');
      expect(problem).toContain(`this is Node.js ${version} (/usr/bin/node)`);
      expect(problem).toContain('bash scripts/setup.sh');
      expect(problem).toContain('NODE_VERSION');
    },
  );

  it('prints the problem and exits 2 (a config error) on an old Node', () => {
    const { proc, stderr, exits } = fakeProcess('20.19.1');
    expect(() => exitUnlessSupportedNode('metasync', proc)).toThrow('exit 2');
    expect(exits).toEqual([2]);
    expect(stderr.join('')).toMatch(/^METASYNC_ERR_NODE_UNSUPPORTED: metasync needs Node\.js 24 or newer/);
  });

  it('neither prints nor exits on a supported Node', () => {
    const { proc, stderr, exits } = fakeProcess('24.22.3');
    exitUnlessSupportedNode('metasync', proc);
    expect([stderr, exits]).toEqual([[], []]);
  });

  it('agrees with engines in every package.json and with .node-version', () => {
    const manifests = ['package.json', 'packages/shared/package.json', 'packages/store/package.json', 'packages/primary/package.json'];
    manifests.push('packages/mirror/package.json', 'packages/dns/package.json', 'infra/package.json');
    for (const path of manifests) {
      const engines = (JSON.parse(repoFile(path)) as { engines?: { node?: string } }).engines;
      expect(engines?.node, path).toBe(`>=${REQUIRED_NODE_MAJOR}`);
    }
    expect(repoFile('.node-version').trim()).toMatch(new RegExp(`^${REQUIRED_NODE_MAJOR}\\.\\d+\\.\\d+$`));
  });
});
