import type { CliIo, Output } from './cli-io.js';
import { createRuntime, type CliRuntime } from './runtime.js';
import { consoleLogger, openRunLog, type RunLogFile } from './run-log.js';

export interface CommandContext {
  io: CliIo;
  out: Output;
  json: boolean;
  debug: boolean;
  configPath?: string;
  /** Aborted on SIGINT/SIGTERM. */
  signal: AbortSignal;
}

export interface RunScope {
  rt: CliRuntime;
  /** The run's log file, when it could be opened. */
  log?: RunLogFile;
}

/**
 * Loads the configuration, opens the run's log file (`<logDir>/<name>-<YYYYMMDD>.log`) and
 * echoes log lines to stderr (not with --json), runs the command, then closes everything.
 * The log file is opened only after the configuration is valid: a bad config writes nothing.
 */
export async function withRuntime(
  ctx: CommandContext,
  logName: string | ((rt: CliRuntime) => string) | undefined,
  run: (scope: RunScope) => Promise<number>,
): Promise<number> {
  const rt = await createRuntime(ctx.io, ctx.configPath !== undefined ? { configPath: ctx.configPath } : {});
  ctx.out.setRedactor(rt.redact);
  for (const warning of rt.warnings) ctx.out.note(`warning: ${warning}`);
  const detach: (() => void)[] = [];
  let log: RunLogFile | undefined;
  if (logName !== undefined) {
    const name = typeof logName === 'function' ? logName(rt) : logName;
    try {
      log = openRunLog({ logDir: rt.logDir, name, timeZone: rt.timeZone, redact: rt.redact, base: { command: name } });
      detach.push(rt.hub.attach(log.logger));
    } catch (error) {
      ctx.out.note(
        `warning: cannot write the log file in ${rt.logDir} (${(error as Error).message}); continuing without it. Set BACKUP_LOG_DIR (or logDir in the config file) to a writable folder.`,
      );
    }
  }
  if (!ctx.json) detach.push(rt.hub.attach(consoleLogger((line) => ctx.out.note(line), { debug: ctx.debug, timeZone: rt.timeZone })));
  try {
    rt.hub.debug(`configuration from ${rt.origin}`, { sources: rt.sources.map((s) => s.name), storages: rt.storages.map((s) => s.name) });
    const code = await run(log ? { rt, log } : { rt });
    rt.hub.debug(`exit code ${code}`);
    return code;
  } catch (error) {
    rt.hub.error(`${(error as Error).message}`, { error });
    throw error;
  } finally {
    for (const d of detach) d();
    log?.close();
    await rt.close();
  }
}
