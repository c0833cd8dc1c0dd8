/**
 * Where a mirror may fetch archives from. The dist URL comes from published
 * metadata, i.e. from whoever can publish: without these checks a package could
 * point its dist at the cloud metadata service (169.254.169.254) or an admin
 * port on the mirror's network, and the mirror would fetch and serve it.
 *
 *   URL          http(s) only; host in the allowlist (a listed host allows its subdomains)
 *   IP literal   checked here (net.connect does no lookup for one)
 *   host name    resolved by the dispatcher's lookup, every address checked before the connect,
 *                so a name that resolves to a private address is refused (no re-resolution window)
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { Agent } from 'undici';
import { metasyncError } from '@metasync/shared';

const PRIVATE = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  PRIVATE.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['64:ff9b::', 96],
] as const)
  PRIVATE.addSubnet(net, prefix, 'ipv6');

/** True for loopback, private, link-local, CGNAT, multicast and reserved addresses (IPv4-mapped IPv6 by its IPv4). */
export function isPrivateAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped !== undefined) return PRIVATE.check(mapped, 'ipv4');
  const family = isIP(address);
  if (family === 0) return true;
  return PRIVATE.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

export interface OriginPolicy {
  allowHosts: readonly string[];
  allowPrivate: boolean;
}

/** Refuses a URL the mirror must not fetch (METASYNC_ERR_DIST_ORIGIN_REFUSED); returns it parsed. */
export function checkOriginUrl(url: string, policy: OriginPolicy): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (err) {
    throw metasyncError('METASYNC_ERR_DIST_ORIGIN_REFUSED', `dist url ${url.slice(0, 200)} is not a URL`, { url: url.slice(0, 200) }, err);
  }
  const refuse = (why: string) =>
    metasyncError('METASYNC_ERR_DIST_ORIGIN_REFUSED', `dist url ${parsed.href.slice(0, 200)}: ${why}`, { url: parsed.href.slice(0, 200) });
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw refuse(`protocol ${parsed.protocol} is not http(s)`);
  if (parsed.username !== '' || parsed.password !== '') throw refuse('credentials in the URL');
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (!policy.allowHosts.some((allowed) => host === allowed || host.endsWith(`.${allowed}`)))
    throw refuse(`host ${host} is not in --dist-allow-hosts`);
  if (isIP(host) !== 0 && !policy.allowPrivate && isPrivateAddress(host)) throw refuse(`address ${host} is private`);
  return parsed;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** A dns.lookup for net.connect that drops private addresses (unless allowed) and fails when none is left. */
export function guardedLookup(allowPrivate: boolean) {
  return (hostname: string, options: { all?: boolean; family?: number | string }, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...options, all: true } as { all: true }, (err, addresses) => {
      if (err !== null) {
        callback(err, []);
        return;
      }
      const usable = allowPrivate ? addresses : addresses.filter((entry) => !isPrivateAddress(entry.address));
      if (usable.length === 0) {
        const refused = Object.assign(new Error(`${hostname} resolves only to private addresses`), { code: 'EPRIVATEADDR' });
        callback(refused, []);
        return;
      }
      if (options.all === true) callback(null, usable);
      else callback(null, usable[0]!.address, usable[0]!.family);
    });
  };
}

/** The undici dispatcher every origin fetch goes through. */
export function createOriginAgent(options: { allowPrivate: boolean; connectTimeoutMs: number; connections: number }): Agent {
  return new Agent({
    connections: options.connections,
    connect: { timeout: options.connectTimeoutMs, lookup: guardedLookup(options.allowPrivate) },
  });
}
