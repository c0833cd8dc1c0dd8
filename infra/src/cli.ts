import { runCli } from './cli-program.js';

/** The `metasync` bin: the only CLI file that reads process.env or sets the exit code. */
const code = await runCli(process.argv.slice(2), {
  env: process.env,
  io: {
    out: (text) => console.log(text),
    err: (text) => console.error(text),
    progressStream: process.stderr,
  },
});
process.exitCode = code;
