import type { Route53Client } from '@aws-sdk/client-route-53';
import type { Clock } from '../registrar.js';
import type { RetryPolicy } from './aws-call.js';

/** What the Route53 helpers share: the client, the zone and the call policy. */
export interface Route53Context {
  client: Route53Client;
  /** Without the `/hostedzone/` prefix. */
  hostedZoneId: string;
  clock: Clock;
  retry: RetryPolicy;
  /** Upper bound for one change to reach INSYNC. */
  insyncTimeoutMs: number;
  /** First GetChange poll delay; doubles up to 10 s. */
  insyncPollMs: number;
}
