/**
 * The DNS registrars, for the CLI and for a mirror that registers itself on
 * start and retires itself on drain (opt-in by its config).
 */
export type { DnsEntry, DnsRegistrar, DnsState, MirrorEndpoint, MirrorRef, StepEvent, StepListener, Clock } from './dns/registrar.js';
export { systemClock } from './dns/registrar.js';
export { createRoute53Registrar, type Route53RegistrarOptions } from './dns/route53/registrar.js';
export { createFileStateStore, createMemoryStateStore, type StateStore } from './dns/route53/state-file.js';
export { createPowerDnsRegistrar, type PowerDnsRegistrarOptions } from './dns/powerdns/registrar.js';
export { createRegistrar } from './dns/create-registrar.js';
export { loadCliConfig, type CliConfig } from './cli-config.js';
