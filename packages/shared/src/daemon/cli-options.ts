import { Command, CommanderError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { metasyncError } from '../errors.js';

/**
 * One option of a daemon: a flag, its METASYNC_* environment twin and help.
 * The daemons' `config.ts` declare a table of these, `parseOptions` reads argv
 * then env (argv wins), and a zod schema validates the merged raw strings.
 */
export interface OptionSpec {
  /** camelCase key in the raw result. */
  key: string;
  /** commander flag text, e.g. `--listen <host:port>`. */
  flag: string;
  env: string;
  description: string;
  defaultValue?: string;
  /** A boolean switch (`--foo`), true when present or env is `1`/`true`. */
  boolean?: boolean;
  /** A secret: never echoed in errors or logs. */
  secret?: boolean;
}

export type RawOptions = Record<string, string | boolean | undefined>;

export interface ParsedCli {
  /** `help` was asked for: print `helpText` and exit 0. */
  help: boolean;
  helpText: string;
  raw: RawOptions;
}

export function buildCommand(name: string, summary: string, specs: readonly OptionSpec[]): Command {
  const command = new Command(name).description(summary).helpOption('-h, --help', 'show this help').exitOverride();
  command.configureOutput({ writeOut: () => undefined, writeErr: () => undefined });
  for (const spec of specs) {
    const defaultText = spec.defaultValue === undefined ? '' : ` (default: ${spec.defaultValue})`;
    const option = new Option(spec.flag, `${spec.description}${defaultText} [env: ${spec.env}]`);
    command.addOption(option);
  }
  return command;
}

/** Parses argv (without node and script) and env into raw option strings. */
export function parseOptions(
  name: string,
  summary: string,
  specs: readonly OptionSpec[],
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): ParsedCli {
  const command = buildCommand(name, summary, specs);
  const helpText = command.helpInformation();
  try {
    command.parse([...argv], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError && (err.code === 'commander.helpDisplayed' || err.code === 'commander.help')) {
      return { help: true, helpText, raw: {} };
    }
    if (err instanceof CommanderError) {
      throw metasyncError('METASYNC_ERR_CONFIG_INVALID', `${name}: ${err.message.replace(/^error: /, '')}`, { argv: argv.join(' ') }, err);
    }
    throw err;
  }
  const fromArgv = command.opts<Record<string, string | boolean | undefined>>();
  const raw: RawOptions = {};
  for (const spec of specs) {
    const argvValue = fromArgv[spec.key];
    const envValue = env[spec.env];
    if (argvValue !== undefined) raw[spec.key] = argvValue;
    else if (envValue !== undefined && envValue !== '')
      raw[spec.key] = spec.boolean === true ? /^(1|true|yes|on)$/i.test(envValue) : envValue;
    else raw[spec.key] = spec.boolean === true ? spec.defaultValue === 'true' : spec.defaultValue;
  }
  return { help: false, helpText, raw };
}

/**
 * Reads a secret given directly or as `<KEY>_FILE` style path; trims one trailing newline.
 * An unreadable file is METASYNC_ERR_CONFIG_INVALID naming `source` (the variable or flag
 * that named the file), so an operator learns which setting to fix, not only `ENOENT`.
 */
export function readSecret(value: string | undefined, filePath: string | undefined, source = 'secret file'): string | undefined {
  if (value !== undefined && value !== '') return value;
  if (filePath === undefined || filePath === '') return undefined;
  try {
    return readFileSync(filePath, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw metasyncError('METASYNC_ERR_CONFIG_INVALID', `${source} ${filePath}: ${(err as Error).message}`, { path: filePath, source }, err);
  }
}

/** Joins zod issues into one message listing every problem. */
export function formatIssues(issues: readonly { path: readonly PropertyKey[]; message: string }[], specs: readonly OptionSpec[]): string {
  return issues
    .map((issue) => {
      const key = String(issue.path[0] ?? '');
      const spec = specs.find((s) => s.key === key);
      const name = spec === undefined ? key : `${spec.flag.split(' ')[0]} / ${spec.env}`;
      return `${name}: ${issue.message}`;
    })
    .join('; ');
}

/** Parses `host:port` or `[v6]:port`. */
export function parseListen(value: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value);
  const port = Number(match?.[3]);
  if (match === null || !(port >= 0 && port <= 65535)) {
    throw new Error(`expected host:port (e.g. 127.0.0.1:8080), got ${JSON.stringify(value)}`);
  }
  return { host: match[1] ?? match[2] ?? '127.0.0.1', port };
}
