import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { BackupError, ConfigError, LIBRARY_VERSION } from '@scholaria/backup-core';
import { defaultIo, Output, type CliIo } from './cli-io.js';
import { EXIT, exitCodeForError } from './exit-codes.js';
import type { CommandContext } from './command-context.js';
import { printError } from './print-error.js';
import { backupCommand } from './commands/backup.js';
import { restoreCommand } from './commands/restore.js';
import { listCommand } from './commands/list.js';
import { showCommand } from './commands/show.js';
import { unlockCommand } from './commands/unlock.js';
import { verifyCommand } from './commands/verify.js';
import { pruneCommand } from './commands/prune.js';
import { healthCheckCommand } from './commands/health-check.js';
import { schedulerRunCommand, schedulerStatusCommand } from './commands/scheduler.js';
import { auditCommand } from './commands/audit.js';
import { drillCommand } from './commands/drill.js';
import { walPushCommand } from './commands/wal-push.js';
import { walFetchCommand } from './commands/wal-fetch.js';
import { walReceiveCommand } from './commands/wal-receive.js';
import { pitrRestoreCommand, pitrRestoreOptionsOf, type PitrRestoreFlags } from './commands/pitr-restore.js';

const TIERS = ['daily', 'weekly', 'monthly', 'manual'] as const;
const RESTORE_MODES = ['swap', 'in-place', 'new-database'] as const;

const EXIT_HELP = `
Exit codes:
  0  success
  1  failure (backup failed, verification failed, restore failed, source unreachable...)
  2  usage or configuration error (nothing was done)
  3  partial backup (some components failed) or a health warning

Configuration: ./backup.config.ts (or .mts/.mjs/.js, or --config PATH) exporting
defineConfig({...}); without a file, the environment (BACKUP_DIR, DATABASE_URL, REDIS_URL,
QDRANT_URL, BACKUP_*_RETENTION, BACKUP_*_SCHEDULE, ...). See docs/cli.md.`;

function collect(value: string, previous: string[]): string[] {
  const names = value
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v !== '');
  if (names.length === 0) throw new InvalidArgumentError('expected a component name such as postgres, redis or qdrant');
  return [...previous, ...names];
}

function collectRaw(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function port(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 0 || Number(value) > 65_535) throw new InvalidArgumentError('expected a port number from 0 to 65535');
  return Number(value);
}

function dbIndex(value: string): number {
  if (!/^\d{1,7}$/.test(value)) throw new InvalidArgumentError('expected a Redis database index such as 0 or 5');
  return Number(value);
}

function positiveInt(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('expected a whole number >= 1');
  return Number(value);
}

interface GlobalOptions {
  json?: boolean;
  config?: string;
  debug?: boolean;
  quiet?: boolean;
  progress?: boolean;
}

/** The subcommands of `scheduler`, which people type without the group. */
const SCHEDULER_SUBCOMMANDS = new Set(['status', 'run']);

/**
 * A usage error in one line, a suggestion and where the help is: not the whole help text,
 * which buries the line that matters. With --json, `{ ok: false, error }` on stdout as well.
 */
function printUsageError(out: Output, message: string, argv: string[], code: string): void {
  const json = argv.includes('--json');
  const words = argv.filter((a) => !a.startsWith('-'));
  let suggestion: string | undefined;
  if (code === 'commander.unknownCommand' && words[0] && SCHEDULER_SUBCOMMANDS.has(words[0])) {
    suggestion = `did you mean \`scholaria-backup scheduler ${words[0]}\`?`;
  }
  // commander's own suggestion: "(Did you mean backup?)" at the end of the message.
  const didYouMean = /\s*\(Did you mean (.+)\?\)$/.exec(message);
  let text = message;
  if (didYouMean) {
    text = message.slice(0, didYouMean.index);
    suggestion ??= `did you mean \`${didYouMean[1]}\`?`;
  }
  const sub = code === 'commander.unknownCommand' ? undefined : words.find((w) => KNOWN_COMMANDS.has(w));
  const helpHint = `run \`scholaria-backup${sub ? ` ${sub === 'status' || sub === 'run' ? `scheduler ${sub}` : sub}` : ''} --help\` for the usage`;
  if (json) {
    out.document({ ok: false, error: { code: 'USAGE', message: text, hint: suggestion ? `${suggestion} (${helpHint})` : helpHint } });
  }
  out.note(`error: ${text}`);
  if (suggestion) out.note(`hint: ${suggestion}`);
  out.note(`hint: ${helpHint}`);
}

const KNOWN_COMMANDS = new Set(['backup', 'restore', 'list', 'show', 'verify', 'prune', 'unlock', 'health-check', 'audit']);

/**
 * Runs `scholaria-backup` with the given arguments (without `node` and the script) and
 * returns the exit code. `io` defaults to the process; tests pass their own streams.
 */
export async function runCli(argv: string[], ioOverrides: Partial<CliIo> = {}): Promise<number> {
  const io: CliIo = { ...defaultIo(), ...ioOverrides };
  const out = new Output(io);
  const signal = io.signal ?? new AbortController().signal;
  let exitCode: number = EXIT.OK;
  let globals: GlobalOptions = {};
  let usageMessage: string | undefined;

  const program = new Command('scholaria-backup');
  program
    .description('Back up and restore Scholaria (PostgreSQL, Redis, Qdrant): backups, restores, verification, retention, scheduler.')
    .version(LIBRARY_VERSION, '-V, --version')
    .option('--json', 'print stable JSON for scripts instead of text')
    .option('--config <path>', 'config file (default: ./backup.config.ts/.mts/.mjs/.js if present, else the environment)')
    .option('--debug', 'show stack traces and debug log lines')
    .option('-q, --quiet', 'print results, warnings and errors only: no progress, no info lines')
    .option('--no-progress', 'no progress bars or progress lines')
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      // Usage errors are printed by the catch below: one line, a suggestion, the --help hint.
      outputError: (s) => {
        usageMessage = s.trim().replace(/^error: /, '');
      },
    })
    .showSuggestionAfterError(true)
    .exitOverride()
    .addHelpText('after', EXIT_HELP);

  const context = (command: Command): CommandContext => {
    globals = command.optsWithGlobals<GlobalOptions>();
    out.json = Boolean(globals.json);
    return {
      io,
      out,
      json: Boolean(globals.json),
      debug: Boolean(globals.debug),
      quiet: Boolean(globals.quiet),
      progress: globals.progress !== false,
      ...(globals.config !== undefined ? { configPath: globals.config } : {}),
      signal,
    };
  };

  program
    .command('backup')
    .description('back up every configured component (or those given with --component) into a new set')
    .addOption(new Option('--tier <tier>', 'tier recorded in the set, used by retention').choices(TIERS).default('manual'))
    .option('--component <name>', 'back up only this component (repeatable, or a comma list)', collect, [])
    .option('--prune', 'apply the retention policy after a successful backup')
    .action(async (opts: { tier: string; component: string[]; prune?: boolean }, command: Command) => {
      exitCode = await backupCommand(context(command), { tier: opts.tier, component: opts.component, prune: Boolean(opts.prune) });
    });

  program
    .command('restore')
    .description('restore a set (verifying every checksum before touching live data), or PostgreSQL to a moment (--to, --to-lsn)')
    .argument('[set]', '"latest" (newest complete set) or a set id such as scholaria_backup_20261126_020000; with --to: the base backup to start from (default: picked for the target); or "cleanup" (drop the databases swap restores kept, after confirmation)')
    .option('--component <name>', 'restore only this component (repeatable, or a comma list)', collect, [])
    .option('--dry-run', 'verify the set and print the plan; write nothing, ask nothing')
    .option('-y, --yes', 'do not ask for confirmation (required when not on a terminal)')
    .addOption(new Option('--mode <mode>', 'PostgreSQL restore mode (default swap)').choices(RESTORE_MODES))
    .option('--target-database <name>', 'PostgreSQL: restore into this new database (implies --mode new-database)')
    .option('--target-redis-url <url>', 'Redis: restore into this server instead of REDIS_URL (redis://:PASSWORD@host:port[/db]), beside the live data')
    .option('--target-redis-db <n>', 'Redis: restore the dump\'s database (the one holding keys) into this database index', dbIndex)
    .option('--target-collection <name>', 'Qdrant: restore the set\'s one collection under this name, or ORIGINAL=NEW per collection (repeatable)', collectRaw, [])
    .option('--target-collection-suffix <suffix>', 'Qdrant: restore every collection as <name><suffix> (e.g. _restored), beside the live ones')
    .option('--to <time>', 'point-in-time recovery: a time with offset ("2026-12-02 14:05:00+09") or "latest" (needs the postgres-pitr source)')
    .option('--to-lsn <lsn>', 'point-in-time recovery to a WAL location such as 0/3000060')
    .option('--data-dir <dir>', 'point-in-time recovery: new, empty data directory for the recovered server')
    .option('--port <port>', 'point-in-time recovery: port of the recovered server (default the original\'s)', port)
    .option('--no-start', 'point-in-time recovery: prepare the data directory but do not start the server')
    .option('--restore-command <cmd>', 'point-in-time recovery: restore_command to write (default "scholaria-backup wal-fetch %f %p")')
    .option('--run-as <user>', 'point-in-time recovery as root: owner of the data directory and user of the server (e.g. postgres)')
    .action(
      async (
        ref: string | undefined,
        opts: {
          component: string[];
          dryRun?: boolean;
          yes?: boolean;
          mode?: string;
          targetDatabase?: string;
          targetRedisUrl?: string;
          targetRedisDb?: number;
          targetCollection: string[];
          targetCollectionSuffix?: string;
        } & PitrRestoreFlags,
        command: Command,
      ) => {
        if (opts.to !== undefined || opts.toLsn !== undefined) {
          exitCode = await pitrRestoreCommand(context(command), ref, pitrRestoreOptionsOf(opts));
          return;
        }
        if (ref === undefined) {
          throw new BackupError('USAGE', 'restore needs a set ("latest" or a set id), or --to/--to-lsn for point-in-time recovery', {
            hint: 'scholaria-backup restore latest --dry-run, or scholaria-backup restore --to "2026-12-02 14:05:00+09" --data-dir DIR',
          });
        }
        exitCode = await restoreCommand(context(command), ref, {
          component: opts.component,
          dryRun: Boolean(opts.dryRun),
          yes: Boolean(opts.yes),
          ...(opts.mode !== undefined ? { mode: opts.mode } : {}),
          ...(opts.targetDatabase !== undefined ? { targetDatabase: opts.targetDatabase } : {}),
          ...(opts.targetRedisUrl !== undefined ? { targetRedisUrl: opts.targetRedisUrl } : {}),
          ...(opts.targetRedisDb !== undefined ? { targetRedisDb: opts.targetRedisDb } : {}),
          targetCollection: opts.targetCollection,
          ...(opts.targetCollectionSuffix !== undefined ? { targetCollectionSuffix: opts.targetCollectionSuffix } : {}),
        });
      },
    );

  program
    .command('wal-push')
    .description("archive one WAL file: archive_command = 'scholaria-backup wal-push %p' (checksummed, encoded, atomic, idempotent)")
    .argument('<path>', 'the file PostgreSQL wants archived (%p)')
    .action(async (path: string, _opts: unknown, command: Command) => {
      exitCode = await walPushCommand(context(command), path);
    });

  program
    .command('wal-fetch')
    .description("fetch one WAL file for recovery: restore_command = 'scholaria-backup wal-fetch %f %p' (exit 1 when not archived)")
    .argument('<name>', 'the file recovery asks for (%f)')
    .argument('<path>', 'where to write it (%p)')
    .action(async (name: string, path: string, _opts: unknown, command: Command) => {
      exitCode = await walFetchCommand(context(command), name, path);
    });

  program
    .command('wal-receive')
    .description('stream WAL with pg_receivewal over a replication slot into the archive, until SIGTERM (instead of archive_command)')
    .option('--slot <name>', 'replication slot (default BACKUP_WAL_SLOT or scholaria_backup)')
    .option('--spool-dir <dir>', 'local folder pg_receivewal writes into (default BACKUP_WAL_SPOOL_DIR)')
    .action(async (opts: { slot?: string; spoolDir?: string }, command: Command) => {
      exitCode = await walReceiveCommand(context(command), opts);
    });

  program
    .command('list')
    .description('list the backup sets on the storage, newest first')
    .option('--all', 'include incomplete sets (no manifest: failed or running backups)')
    .option('--tier <tier>', 'only sets of this tier (daily, weekly, monthly, manual)')
    .option('--component <name>', 'only sets holding a successful backup of this component (repeatable, or a comma list)', collect, [])
    .option('--last <n>', 'only the newest N sets (after the other filters)', positiveInt)
    .action(async (opts: { all?: boolean; tier?: string; component: string[]; last?: number }, command: Command) => {
      exitCode = await listCommand(context(command), {
        all: Boolean(opts.all),
        component: opts.component,
        ...(opts.tier !== undefined ? { tier: opts.tier } : {}),
        ...(opts.last !== undefined ? { last: opts.last } : {}),
      });
    });

  program
    .command('show')
    .description('one set in detail: components, artifacts, sizes, codecs, row/key/point counts, versions')
    .argument('<set>', '"latest" or a set id')
    .action(async (ref: string, _opts: unknown, command: Command) => {
      exitCode = await showCommand(context(command), ref);
    });

  program
    .command('verify')
    .description('re-hash the stored artifacts of a set (default latest) against manifest.json and SHA256SUMS')
    .argument('[set]', '"latest" or a set id')
    .option('--all', 'verify every set')
    .action(async (ref: string | undefined, opts: { all?: boolean }, command: Command) => {
      exitCode = await verifyCommand(context(command), ref, { all: Boolean(opts.all) });
    });

  program
    .command('prune')
    .description('delete sets the retention policy no longer keeps (never the last good one) and leftovers of failed runs')
    .option('--dry-run', 'show what would be deleted and why; delete nothing')
    .option('--keep-last <n>', 'ad-hoc policy: keep the N newest sets', positiveInt)
    .option('--keep-daily <n>', 'ad-hoc policy: keep the newest set of each of the N newest days with sets', positiveInt)
    .option('--keep-weekly <n>', 'ad-hoc policy: the same per ISO week', positiveInt)
    .option('--keep-monthly <n>', 'ad-hoc policy: the same per month', positiveInt)
    .option('--keep-yearly <n>', 'ad-hoc policy: the same per year', positiveInt)
    .option('--keep-within <duration>', 'ad-hoc policy: keep every set newer than the newest minus this (7d, 2w, 1y2m)')
    .action(
      async (
        opts: { dryRun?: boolean; keepLast?: number; keepDaily?: number; keepWeekly?: number; keepMonthly?: number; keepYearly?: number; keepWithin?: string },
        command: Command,
      ) => {
        const policy = {
          ...(opts.keepLast !== undefined ? { last: opts.keepLast } : {}),
          ...(opts.keepDaily !== undefined ? { daily: opts.keepDaily } : {}),
          ...(opts.keepWeekly !== undefined ? { weekly: opts.keepWeekly } : {}),
          ...(opts.keepMonthly !== undefined ? { monthly: opts.keepMonthly } : {}),
          ...(opts.keepYearly !== undefined ? { yearly: opts.keepYearly } : {}),
          ...(opts.keepWithin !== undefined ? { within: opts.keepWithin } : {}),
        };
        exitCode = await pruneCommand(context(command), { dryRun: Boolean(opts.dryRun), ...(Object.keys(policy).length > 0 ? { policy } : {}) });
      },
    );

  program
    .command('unlock')
    .description('remove the run lock of a killed run (shows its owner, asks first) instead of waiting for it to expire')
    .option('-y, --yes', 'do not ask for confirmation (required when not on a terminal)')
    .action(async (opts: { yes?: boolean }, command: Command) => {
      exitCode = await unlockCommand(context(command), { yes: Boolean(opts.yes) });
    });

  program
    .command('drill')
    .description('restore a set (default latest) into throwaway targets beside the live data, check it, time it, remove the targets')
    .argument('[set]', '"latest" or a set id')
    .option('--component <name>', 'drill only this component (repeatable, or a comma list)', collect, [])
    .action(async (ref: string | undefined, opts: { component: string[] }, command: Command) => {
      exitCode = await drillCommand(context(command), ref, { component: opts.component });
    });

  program
    .command('health-check')
    .description('storage reachable and writable, a recent backup per tier, free space, tools, sources reachable')
    .action(async (_opts: unknown, command: Command) => {
      exitCode = await healthCheckCommand(context(command));
    });

  const scheduler = program.command('scheduler').description('the backup service: run the schedule in the foreground, or show its status');
  scheduler
    .command('run')
    .description('run the tiers on their schedules until SIGTERM/SIGINT (prune after each successful backup)')
    .option('--metrics-port <port>', 'serve GET /metrics and GET /healthz on this port (default BACKUP_METRICS_PORT)', port)
    .option('--metrics-host <host>', 'address the metrics server listens on', '0.0.0.0')
    .addOption(new Option('--run-now <tier>', 'run this tier once right after start').hideHelp())
    .action(async (opts: { metricsPort?: number; metricsHost: string; runNow?: string }, command: Command) => {
      exitCode = await schedulerRunCommand(context(command), {
        metricsHost: opts.metricsHost,
        ...(opts.metricsPort !== undefined ? { metricsPort: opts.metricsPort } : {}),
        ...(opts.runNow !== undefined ? { runNow: opts.runNow } : {}),
      });
    });
  scheduler
    .command('status')
    .description('next run and last set per tier, missed runs, running job (from the storage locks)')
    .action(async (_opts: unknown, command: Command) => {
      exitCode = await schedulerStatusCommand(context(command));
    });

  program
    .command('audit')
    .description('print the audit log (every backup, restore, verify, prune); "audit verify" checks its hash chain')
    .addArgument(new Argument('[action]', '"verify" to check the hash chain').choices(['verify']))
    .option('--limit <n>', 'only the newest N lines', positiveInt)
    .action(async (action: string | undefined, opts: { limit?: number }, command: Command) => {
      exitCode = await auditCommand(context(command), action, opts.limit !== undefined ? { limit: opts.limit } : {});
    });

  try {
    if (argv.length === 0) {
      program.outputHelp({ error: true });
      return EXIT.USAGE;
    }
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return EXIT.OK;
      // A command group without its subcommand (`scheduler`) shows its help as an error.
      if (error.code === 'commander.help') return error.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
      printUsageError(out, usageMessage ?? error.message.replace(/^error: /, ''), argv, error.code);
      return EXIT.USAGE;
    }
    printError(out, error, { json: Boolean(globals.json), debug: Boolean(globals.debug) });
    return error instanceof ConfigError ? EXIT.USAGE : exitCodeForError(error);
  }
}
