import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { BackupError, createAuditLog, dispatchNotification, type BackupEvent } from '@scholaria/backup-core';
import type { CliRuntime } from '../runtime.js';
import { walFailureStatePath, type WalAction } from './wal-paths.js';

/**
 * Audit lines and notifications of wal-push / wal-fetch. Loaded only when a command failed,
 * or when it succeeded after a reported failure: the per-segment fast path never loads the
 * notifiers. A success is not audited per segment (the archive records every file and its
 * time; `verify` and `health-check` read them); a failure is, and it is an alert.
 *
 * PostgreSQL retries a failing archive_command three times, then every minute, for as long
 * as it fails. So one streak of the same failure (same file, same error code) is audited and
 * notified once, then again at most every WAL_ALERT_REPEAT_MS, with the number of failures
 * since; the first success after it is audited and notified as `wal.recovered`. The streak is
 * kept in `<logDir>/<action>-failing.json`; when that cannot be written, every failure is reported.
 */
export const WAL_ALERT_REPEAT_MS = 15 * 60_000;

interface FailureStreak {
  file: string;
  code: string;
  firstAt: string;
  reportedAt: string;
  /** Failures in this streak so far. */
  failures: number;
}

function readStreak(path: string): FailureStreak | undefined {
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as FailureStreak;
    return typeof v.file === 'string' && typeof v.code === 'string' && typeof v.reportedAt === 'string' && typeof v.failures === 'number' ? v : undefined;
  } catch {
    return undefined;
  }
}

function writeStreak(path: string, streak: FailureStreak): boolean {
  try {
    mkdirSync(join(path, '..'), { recursive: true, mode: 0o700 });
    const temp = `${path}.${process.pid}.tmp`;
    writeFileSync(temp, `${JSON.stringify(streak)}\n`, { mode: 0o600 });
    renameSync(temp, path);
    return true;
  } catch {
    return false;
  }
}

async function auditAll(rt: CliRuntime, entry: Parameters<ReturnType<typeof createAuditLog>['append']>[0], warn: (line: string) => void): Promise<void> {
  for (const storage of rt.storages) {
    // A missing backup folder (unmounted volume) is the failure itself: writing the audit line
    // would create the folder on the mount point.
    const root = (storage as { root?: unknown }).root;
    if (typeof root === 'string' && storage.name.startsWith('fs:') && !existsSync(root)) continue;
    try {
      await createAuditLog(storage, { timeZone: rt.timeZone, redact: rt.redact }).append(entry);
    } catch (error) {
      warn(`warning: could not append to the audit log on ${storage.name}: ${rt.redact((error as Error).message)}`);
    }
  }
}

async function notifyAll(rt: CliRuntime, event: Omit<BackupEvent, 'time' | 'host'>, warn: (line: string) => void): Promise<void> {
  let notifiers;
  try {
    notifiers = await rt.notifiers();
  } catch (error) {
    warn(`warning: could not set up the notifiers: ${rt.redact((error as Error).message)}`);
    return;
  }
  if (notifiers.length === 0) return;
  // archive_command waits for this: fewer, shorter attempts than a backup's (unless configured).
  const results = await dispatchNotification(notifiers, { ...event, time: new Date().toISOString(), host: hostname() }, {
    redact: rt.redact,
    timeoutMs: 5_000,
    retries: 1,
    backoffMs: 500,
    ...(rt.engine.options.notify ?? {}),
  });
  for (const r of results) if (!r.ok) warn(`warning: notifier ${r.notifier} failed: ${r.error ?? 'unknown error'}`);
}

/** After a failed wal-push/wal-fetch: audit line and `wal.failed` notification, once per streak and interval. */
export async function reportWalFailure(rt: CliRuntime, o: { action: WalAction; file: string; error: unknown; warn: (line: string) => void; now?: Date }): Promise<{ reported: boolean; failures: number }> {
  const now = o.now ?? new Date();
  const be = BackupError.isInstance(o.error) ? o.error : undefined;
  const code = be?.code ?? 'UNKNOWN';
  const message = rt.redact(o.error instanceof Error ? o.error.message : String(o.error));
  const path = walFailureStatePath(rt, o.action);
  const previous = readStreak(path);
  const same = previous !== undefined && previous.file === o.file && previous.code === code;
  const failures = same ? previous.failures + 1 : 1;
  if (same && now.getTime() - Date.parse(previous.reportedAt) < WAL_ALERT_REPEAT_MS) {
    writeStreak(path, { ...previous, failures });
    o.warn(`note: failure ${failures} of ${o.file} in a row; reported at ${previous.reportedAt}, reported again at most every ${WAL_ALERT_REPEAT_MS / 60_000} min`);
    return { reported: false, failures };
  }
  const firstAt = same ? previous.firstAt : now.toISOString();
  const details = { file: o.file, failures, failingSince: firstAt };
  await auditAll(rt, { action: o.action, result: 'failed', error: message, details }, o.warn);
  await notifyAll(
    rt,
    {
      type: 'wal.failed',
      outcome: 'failure',
      error: { code, message, component: 'wal', ...(be?.hint ? { hint: rt.redact(be.hint) } : {}) },
      details: [
        `${o.action} ${o.file} failed${failures > 1 ? ` (${failures} times in a row since ${firstAt})` : ''}`,
        o.action === 'wal-push'
          ? 'PostgreSQL keeps the file in pg_wal and retries; pg_wal grows until archiving works again. Point-in-time recovery past this file is not possible until then.'
          : o.action === 'wal-receive'
            ? 'WAL streaming stopped: the replication slot keeps the WAL on the server (pg_wal grows) until wal-receive runs again.'
            : 'Recovery cannot go past this file.',
      ],
      storages: rt.storages.map((s) => s.name),
    },
    o.warn,
  );
  writeStreak(path, { file: o.file, code, firstAt, reportedAt: now.toISOString(), failures });
  return { reported: true, failures };
}

/** The first success after a reported failure streak: audit line and `wal.recovered`; the streak ends. */
export async function reportWalRecovered(rt: CliRuntime, o: { action: WalAction; file: string; warn: (line: string) => void }): Promise<void> {
  const path = walFailureStatePath(rt, o.action);
  const streak = readStreak(path);
  rmSync(path, { force: true });
  if (!streak) return;
  const details = { file: o.file, failedFile: streak.file, failures: streak.failures, failingSince: streak.firstAt };
  await auditAll(rt, { action: o.action, result: 'ok', details }, o.warn);
  await notifyAll(
    rt,
    {
      type: 'wal.recovered',
      outcome: 'success',
      details: [`${o.action} works again: ${o.file} archived after ${streak.failures} failure${streak.failures === 1 ? '' : 's'} of ${streak.file} since ${streak.firstAt}`],
      storages: rt.storages.map((s) => s.name),
    },
    o.warn,
  );
}
