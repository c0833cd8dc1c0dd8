/**
 * The DNS registrars, for the operator CLI and for a mirror that registers
 * itself on start and retires itself on drain (opt-in by its config).
 */
export type { DnsEntry, DnsRegistrar, DnsState, MirrorEndpoint, MirrorRef, StepEvent, StepListener, Clock } from './registrar.js';
export { systemClock } from './registrar.js';
export { createRoute53Registrar, type Route53RegistrarOptions } from './route53/registrar.js';
export { createFileStateStore, createMemoryStateStore, type StateStore } from './route53/state-file.js';
export { createPowerDnsRegistrar, type PowerDnsRegistrarOptions } from './powerdns/registrar.js';
export { createRegistrar } from './create-registrar.js';
export {
  completeDnsConfig,
  DNS_ENV,
  dnsSectionSchema,
  loadDnsConfig,
  mergeDnsEnv,
  readConfigFile,
  type DnsConfig,
  type DnsSection,
} from './dns-config.js';
