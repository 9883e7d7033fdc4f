#!/usr/bin/env node
import { walFastArgs } from './wal-args.js';

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

const argv = process.argv.slice(2);
const io = {
  signal: controller.signal,
  isTTY: Boolean(process.stdin.isTTY && process.stderr.isTTY),
  stdoutIsTTY: Boolean(process.stdout.isTTY),
};
// archive_command / restore_command run once per WAL file: their slim entry skips commander,
// pino and every other command (docs/benchmarks.md, "wal-push overhead per segment").
const wal = walFastArgs(argv);
const code = wal ? await (await import('./wal-main.js')).runWalCommand(wal, io) : await (await import('./cli.js')).runCli(argv, io);
process.exitCode = code;
// A client library that keeps a socket open must not keep a finished command alive.
setTimeout(() => process.exit(code), 5_000).unref();
