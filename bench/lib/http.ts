import { Agent, request, type IncomingHttpHeaders } from 'node:http';

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface HttpRequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  agent?: Agent;
  timeoutMs?: number;
}

/** A keep-alive pool, so polling measures the server, not TCP handshakes. */
export function createKeepAliveAgent(maxSockets = 16): Agent {
  return new Agent({ keepAlive: true, maxSockets });
}

/** One HTTP/1.1 request on loopback; the whole body is buffered (bench files are small). */
export async function httpRequest(url: string, options: HttpRequestOptions = {}): Promise<HttpResponse> {
  return await new Promise<HttpResponse>((resolve, reject) => {
    const req = request(url, { method: options.method ?? 'GET', headers: options.headers, agent: options.agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.setTimeout(options.timeoutMs ?? 10_000, () =>
      req.destroy(new Error(`${options.method ?? 'GET'} ${url} timed out after ${options.timeoutMs ?? 10_000} ms`)),
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

export async function getJson<T>(url: string, agent?: Agent): Promise<T> {
  const response = await httpRequest(url, agent === undefined ? {} : { agent });
  if (response.status !== 200)
    throw new Error(`GET ${url}: expected 200, got ${response.status}: ${response.body.toString('utf8').slice(0, 300)}`);
  return JSON.parse(response.body.toString('utf8')) as T;
}

/** Reads one unlabelled sample of a Prometheus text exposition; undefined when absent. */
export function readPrometheusValue(text: string, name: string): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (!rest.startsWith(' ') && !rest.startsWith('{')) continue;
    const value = Number(rest.slice(rest.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) return value;
  }
  return undefined;
}

export async function readMetric(baseUrl: string, name: string, agent?: Agent): Promise<number | undefined> {
  const response = await httpRequest(`${baseUrl}/metrics`, agent === undefined ? {} : { agent });
  if (response.status !== 200) throw new Error(`GET ${baseUrl}/metrics: expected 200, got ${response.status}`);
  return readPrometheusValue(response.body.toString('utf8'), name);
}

export interface SseSubscription {
  close(): void;
}

/**
 * Follows a server-sent events stream, calling `onEvent` with each event name,
 * its data and the hrtime it arrived; bounded by `close()`.
 */
export function subscribeSse(url: string, onEvent: (event: string, data: string, receivedNs: bigint) => void): SseSubscription {
  let buffer = '';
  const req = request(url, { headers: { accept: 'text/event-stream' } }, (res) => {
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      const receivedNs = process.hrtime.bigint();
      buffer += chunk;
      for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n')) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = 'message';
        const data: string[] = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event:')) event = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
        }
        if (data.length > 0) onEvent(event, data.join('\n'), receivedNs);
      }
    });
    res.on('error', () => undefined);
  });
  // A closed or refused stream just ends the subscription: the figures it feeds are optional.
  req.on('error', () => undefined);
  req.end();
  return { close: () => req.destroy() };
}
