import { isIP } from 'node:net';
import { metasyncError } from '@metasync/shared';
import type { MirrorEndpoint } from '../registrar.js';

/**
 * PowerDNS LUA content for the service name. One `ifurlextup` call per client
 * region: the first address group is that region's mirrors, the second every
 * other mirror, so clients get their region's healthy mirrors and fall back
 * to the rest only when none is up. `ifurlextup` (not `ifurlup`) because the
 * address in the answer and the URL that is checked are separate: the check
 * goes to the mirror's freshness URL, which must answer 200 with `fresh`.
 *
 *   A ";local o={...} if netmask({'10.1.0.0/16'}) then return ifurlextup({{<eu>},{<others>}},o) end ... return ifurlextup({{<all>}},o)"
 */
export interface LuaRecordOptions {
  /** Client subnets per region (matched against ECS, else the resolver address). */
  regionSubnets: Readonly<Record<string, readonly string[]>>;
  /** Per-check timeout, seconds. */
  timeoutS?: number;
}

const SAFE_LUA_STRING = /^[A-Za-z0-9:./_%?=&@[\]~+-]*$/;

function luaString(value: string, what: string): string {
  if (!SAFE_LUA_STRING.test(value)) {
    throw metasyncError('METASYNC_ERR_DNS_CALL_FAILED', `${what} ${JSON.stringify(value)} has characters not allowed in a LUA record`, {
      value,
    });
  }
  return `'${value}'`;
}

function group(mirrors: readonly MirrorEndpoint[]): string {
  return `{${mirrors.map((m) => `[${luaString(m.address, 'address')}]=${luaString(m.healthUrl, 'health URL')}`).join(',')}}`;
}

/** The LUA record content for one address family, or undefined when no mirror has one. */
export function luaRecordContent(type: 'A' | 'AAAA', mirrors: readonly MirrorEndpoint[], options: LuaRecordOptions): string | undefined {
  const family = type === 'A' ? 4 : 6;
  const own = mirrors.filter((m) => isIP(m.address) === family);
  if (own.length === 0) return undefined;
  const opts = `local o={selector='all',stringmatch='fresh',timeout=${options.timeoutS ?? 2}} `;
  const branches: string[] = [];
  for (const [region, subnets] of Object.entries(options.regionSubnets).sort(([a], [b]) => a.localeCompare(b))) {
    const local = own.filter((m) => m.region === region);
    if (local.length === 0 || subnets.length === 0) continue;
    const others = own.filter((m) => m.region !== region);
    const groups = others.length === 0 ? `{${group(local)}}` : `{${group(local)},${group(others)}}`;
    branches.push(`if netmask({${subnets.map((s) => luaString(s, 'subnet')).join(',')}}) then return ifurlextup(${groups},o) end `);
  }
  return `${type} ";${opts}${branches.join('')}return ifurlextup({${group(own)}},o)"`;
}

/** One TXT string per mirror at `_metasync-mirrors.<service>`: the registrar's own list. */
export function mirrorTxt(mirror: MirrorEndpoint): string {
  for (const [what, value] of Object.entries(mirror)) {
    if (/[\s"\\]/.test(value))
      throw metasyncError('METASYNC_ERR_DNS_CALL_FAILED', `mirror ${what} ${JSON.stringify(value)} may not contain spaces or quotes`, {
        [what]: value,
      });
  }
  return `"metasync id=${mirror.mirrorId} region=${mirror.region} address=${mirror.address} health=${mirror.healthUrl}"`;
}

export function parseMirrorTxt(content: string): MirrorEndpoint | undefined {
  const match = /^"metasync id=(\S+) region=(\S+) address=(\S+) health=(\S+)"$/.exec(content);
  if (match === null) return undefined;
  return { mirrorId: match[1]!, region: match[2]!, address: match[3]!, healthUrl: match[4]! };
}
