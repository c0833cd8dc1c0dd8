/** The operator CLI's config; the DNS registrars and their config reader are in @metasync/dns. */
export { loadCliConfig, type CliConfig } from './cli-config.js';
