import { request } from 'undici';
import { metasyncError } from '@metasync/shared';
import {
  absoluteName,
  step,
  systemClock,
  type Clock,
  type DnsEntry,
  type DnsRegistrar,
  type MirrorEndpoint,
  type MirrorRef,
  type StepListener,
} from '../registrar.js';
import { luaRecordContent, mirrorTxt, parseMirrorTxt, type LuaRecordOptions } from './lua-record.js';

export interface PowerDnsRegistrarOptions extends LuaRecordOptions {
  /** e.g. `http://127.0.0.1:8081` (the webserver; the API is under /api/v1). */
  apiUrl: string;
  apiKey: string;
  serverId?: string;
  zone: string;
  /** The name clients resolve; it gets the LUA records. */
  serviceName: string;
  ttlS?: number;
  drainMarginMs?: number;
  clock?: Clock;
  timeoutMs?: number;
}

interface RrSet {
  name: string;
  type: string;
  ttl?: number;
  records: { content: string; disabled: boolean }[];
}

/**
 * PowerDNS registrar: the mirror list lives in pdns itself (a TXT rrset, one
 * string per mirror), and every change rewrites that list and the service
 * name's LUA records in one PATCH, so the two never disagree. Health checks
 * are part of the LUA record (`ifurlextup`), so there is nothing to delete
 * after a withdraw.
 */
export function createPowerDnsRegistrar(options: PowerDnsRegistrarOptions): DnsRegistrar {
  const clock = options.clock ?? systemClock;
  const ttlS = options.ttlS ?? 60;
  const drainMarginMs = options.drainMarginMs ?? 10_000;
  const zone = absoluteName(options.zone);
  const serviceName = absoluteName(options.serviceName);
  const listName = `_metasync-mirrors.${serviceName}`;
  const zoneUrl = `${options.apiUrl.replace(/\/+$/, '')}/api/v1/servers/${encodeURIComponent(options.serverId ?? 'localhost')}/zones/${encodeURIComponent(zone)}`;

  async function api(method: 'GET' | 'PATCH', body?: unknown): Promise<unknown> {
    const what = `PowerDNS ${method} zone ${zone}`;
    let response;
    try {
      response = await request(zoneUrl, {
        method,
        headers: { 'x-api-key': options.apiKey, 'content-type': 'application/json', accept: 'application/json' },
        body: body === undefined ? null : JSON.stringify(body),
        headersTimeout: options.timeoutMs ?? 10_000,
        bodyTimeout: options.timeoutMs ?? 10_000,
      });
    } catch (err) {
      throw metasyncError('METASYNC_ERR_DNS_CALL_FAILED', `${what} failed: ${(err as Error).message}`, { url: zoneUrl }, err);
    }
    const text = await response.body.text();
    if (response.statusCode >= 300) {
      throw metasyncError('METASYNC_ERR_DNS_CALL_FAILED', `${what} answered HTTP ${response.statusCode}: ${text.slice(0, 300)}`, {
        url: zoneUrl,
        status: response.statusCode,
      });
    }
    return text === '' ? undefined : (JSON.parse(text) as unknown);
  }

  async function readMirrors(): Promise<MirrorEndpoint[]> {
    const zoneJson = (await api('GET')) as { rrsets?: RrSet[] } | undefined;
    const txt = zoneJson?.rrsets?.find((set) => set.name === listName && set.type === 'TXT');
    return (txt?.records ?? []).map((r) => parseMirrorTxt(r.content)).filter((m): m is MirrorEndpoint => m !== undefined);
  }

  /** Replaces the mirror list and both LUA records in one PATCH (pdns applies it in one transaction). */
  async function writeMirrors(mirrors: readonly MirrorEndpoint[]): Promise<void> {
    const sorted = [...mirrors].sort((a, b) => a.mirrorId.localeCompare(b.mirrorId));
    const rrsets: unknown[] = [
      sorted.length === 0
        ? { name: listName, type: 'TXT', changetype: 'DELETE' }
        : {
            name: listName,
            type: 'TXT',
            ttl: ttlS,
            changetype: 'REPLACE',
            records: sorted.map((m) => ({ content: mirrorTxt(m), disabled: false })),
          },
    ];
    const lua = (['A', 'AAAA'] as const).map((type) => luaRecordContent(type, sorted, options)).filter((c): c is string => c !== undefined);
    rrsets.push(
      lua.length === 0
        ? { name: serviceName, type: 'LUA', changetype: 'DELETE' }
        : {
            name: serviceName,
            type: 'LUA',
            ttl: ttlS,
            changetype: 'REPLACE',
            records: lua.map((content) => ({ content, disabled: false })),
          },
    );
    await api('PATCH', { rrsets });
  }

  async function register(mirror: MirrorEndpoint, callOptions: { onStep?: StepListener } = {}): Promise<void> {
    mirrorTxt(mirror);
    await step(callOptions.onStep, 'upsert-records', { serviceName, mirrorId: mirror.mirrorId }, async () => {
      const others = (await readMirrors()).filter((m) => m.mirrorId !== mirror.mirrorId);
      await writeMirrors([...others, mirror]);
    });
  }

  async function withdraw(mirror: MirrorRef, callOptions: { onStep?: StepListener } = {}): Promise<void> {
    await step(callOptions.onStep, 'delete-record', { serviceName, mirrorId: mirror.mirrorId }, async () => {
      const mirrors = await readMirrors();
      if (mirrors.some((m) => m.mirrorId === mirror.mirrorId)) await writeMirrors(mirrors.filter((m) => m.mirrorId !== mirror.mirrorId));
    });
    // No INSYNC with pdns: the API write is live at once (and purges pdns's caches); resolvers may hold it one TTL.
    const waitMs = ttlS * 1000 + drainMarginMs;
    await step(callOptions.onStep, 'wait-ttl', { waitMs }, () => clock.sleep(waitMs));
  }

  async function retire(mirror: MirrorRef, callOptions: { onStep?: StepListener } = {}): Promise<void> {
    if ((await readMirrors()).some((m) => m.mirrorId === mirror.mirrorId)) await withdraw(mirror, callOptions);
  }

  async function list(): Promise<DnsEntry[]> {
    return (await readMirrors()).map((m) => ({
      mirrorId: m.mirrorId,
      region: m.region,
      address: m.address,
      healthUrl: m.healthUrl,
      state: 'registered' as const,
    }));
  }

  return { kind: 'powerdns', register, withdraw, retire, list };
}
