#!/usr/bin/env node
import { runCli } from './cli.js';

const controller = new AbortController();
let signals = 0;
const onSignal = (name: NodeJS.Signals) => {
  signals++;
  if (signals === 1) {
    process.stderr.write(`received ${name}: stopping cleanly (send it again to exit at once)\n`);
    controller.abort(new Error(`received ${name}`));
    return;
  }
  process.exit(1);
};
// `scholaria-backup audit --json | head` closes stdout early: end quietly, no EPIPE stack trace.
// (The command's work is done by the time its output is written.)
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE' || error.code === 'ERR_STREAM_DESTROYED') process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
    throw error;
  });
}
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

const code = await runCli(process.argv.slice(2), {
  signal: controller.signal,
  isTTY: Boolean(process.stdin.isTTY && process.stderr.isTTY),
  stdoutIsTTY: Boolean(process.stdout.isTTY),
});
process.exitCode = code;
// A client library that keeps a socket open must not keep a finished command alive.
setTimeout(() => process.exit(code), 5_000).unref();
