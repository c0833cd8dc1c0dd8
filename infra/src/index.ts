/**
 * The operator CLI's config and its registrar factory, for a mirror that
 * registers itself on start and retires itself on drain (opt-in by its config).
 */
export { createRegistrar } from './dns/create-registrar.js';
export { loadCliConfig, type CliConfig } from './cli-config.js';
