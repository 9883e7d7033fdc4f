import { existsSync, mkdirSync, statSync } from 'node:fs';
import { BackupError, createRedactor, type Logger, type Storage } from '@scholaria/backup-core';
import type { CliIo, Output } from './cli-io.js';
import { createRuntime, type CliRuntime } from './runtime.js';
import { consoleLogger } from './log-hub.js';
import { withCliWording } from './cli-wording.js';

export interface CommandContext {
  io: CliIo;
  out: Output;
  json: boolean;
  debug: boolean;
  configPath?: string;
  /** Aborted on SIGINT/SIGTERM. */
  signal: AbortSignal;
  /** --quiet: results, warnings and errors only (no progress, no info lines). */
  quiet?: boolean;
  /** false with --no-progress (and --quiet). */
  progress?: boolean;
}

/** Progress options for createProgress: bars only when stderr, stdin and stdout are terminals. */
export function progressMode(ctx: CommandContext): { tty: boolean; enabled: boolean } {
  return { tty: ctx.io.isTTY && ctx.io.stdoutIsTTY !== false, enabled: !ctx.json && ctx.progress !== false && !ctx.quiet };
}

export interface RunScope {
  rt: CliRuntime;
  /** Writes to the run's log file only (not the terminal). */
  fileLog: Logger;
  /** Path of the run's log file, once something was logged. */
  logPath(): string | undefined;
}

/** What a command does about a storage folder that does not exist. */
export type StorageRootPolicy = 'must-exist' | 'create';

/**
 * A missing backup folder is an unmounted volume or a typo far more often than "no backups
 * yet": every command but `backup` and `scheduler run` refuses it, naming the path,
 * instead of listing nothing or creating an empty folder beside the real one.
 */
export function checkStorageRoots(storages: Storage[], origin: string, policy: StorageRootPolicy, onCreate: (root: string) => void = () => {}): void {
  for (const storage of storages) {
    const root = (storage as { root?: unknown }).root;
    if (typeof root !== 'string' || !storage.name.startsWith('fs:')) continue;
    if (existsSync(root)) {
      if (!statSync(root).isDirectory()) {
        throw new BackupError('CONFIG_INVALID', `the backup folder ${root} is not a folder`, {
          hint: `Point ${origin === 'environment' ? 'BACKUP_DIR' : 'the fs storage root in ' + origin} at the backup folder.`,
        });
      }
      continue;
    }
    if (policy === 'create') {
      mkdirSync(root, { recursive: true, mode: 0o700 });
      onCreate(root);
      continue;
    }
    throw new BackupError('CONFIG_INVALID', `the backup folder ${root} does not exist: is the volume mounted?`, {
      hint: `Mount the backup volume, or fix ${origin === 'environment' ? 'BACKUP_DIR' : 'the fs storage root in ' + origin}. Only \`scholaria-backup backup\` and \`scheduler run\` create the folder.`,
    });
  }
}

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * Loads the configuration, logs the run to `<logDir>/<name>-<YYYYMMDD>.log` (JSON lines,
 * redacted) and echoes log lines to stderr (not with --json), runs the command, then closes
 * everything. Invalid configuration throws before anything is written.
 */
export async function withRuntime(
  ctx: CommandContext,
  logName: string | undefined,
  run: (scope: RunScope) => Promise<number>,
  options: {
    storageRoot?: StorageRootPolicy;
    extraSecrets?: string[];
    skipComponentErrors?: boolean;
    /** See CreateRuntimeOptions.lean (wal-push, wal-fetch). */
    lean?: boolean;
    /** Called with the error before it is thrown, once the configuration is loaded (a missing storage root included). */
    onFailure?: (rt: CliRuntime, error: unknown) => Promise<void>;
  } = {},
): Promise<number> {
  const rt = await createRuntime(ctx.io, { ...(ctx.configPath !== undefined ? { configPath: ctx.configPath } : {}), ...(options.lean ? { lean: true } : {}) });
  if (options.extraSecrets?.length) {
    // Secrets given on the command line (a restore target's URL) are masked like configured ones.
    const configured = rt.redact;
    const extra = createRedactor(options.extraSecrets);
    rt.redact = (text) => extra(configured(text));
  }
  ctx.out.setRedactor(withCliWording(rt.redact, rt.origin));
  try {
    checkStorageRoots(rt.storages, rt.origin, options.storageRoot ?? 'must-exist', (root) =>
      ctx.out.note(`note: created the backup folder ${root} (it did not exist)`),
    );
  } catch (error) {
    try {
      await options.onFailure?.(rt, error);
    } finally {
      await rt.close();
    }
    throw error;
  }
  for (const warning of rt.warnings) ctx.out.note(`warning: ${warning}`);
  const detach: (() => void)[] = [];
  // The log file (pino) is loaded only by commands that write one: not wal-push/wal-fetch.
  const fileLog =
    logName === undefined
      ? undefined
      : (await import('./run-log.js')).lazyFileLogger(rt, logName, (error) =>
          ctx.out.note(
            `warning: cannot write the log file in ${rt.logDir} (${error.message}); continuing without it. Set BACKUP_LOG_DIR (or logDir in the config file) to a writable folder.`,
          ),
        );
  if (fileLog) detach.push(rt.hub.attach(fileLog));
  if (!ctx.json) detach.push(rt.hub.attach(consoleLogger((line) => ctx.out.note(line), { debug: ctx.debug, timeZone: rt.timeZone, skipComponentErrors: options.skipComponentErrors ?? false, quiet: ctx.quiet ?? false })));
  try {
    const code = await run({ rt, fileLog: fileLog ?? silent, logPath: () => fileLog?.file()?.path });
    if (fileLog?.file()) fileLog.info(`exit code ${code}`, { exitCode: code });
    return code;
  } catch (error) {
    // The terminal gets the error from runCli; an open log file keeps it with the run's lines.
    if (fileLog?.file()) fileLog.error((error as Error).message, { error });
    await options.onFailure?.(rt, error);
    throw error;
  } finally {
    for (const d of detach) d();
    fileLog?.close();
    await rt.close();
  }
}
