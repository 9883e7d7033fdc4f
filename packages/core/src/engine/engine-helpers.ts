import { Readable } from 'node:stream';
import type { Storage } from '../interfaces/storage.js';
import type { ErrorReport } from '../interfaces/events.js';
import { BackupError, type BackupErrorCode } from '../errors/backup-error.js';
import { createAuditLog } from '../audit/audit-log.js';
import type { EngineContext } from './engine-context.js';

/**
 * Turns anything thrown into a BackupError whose message and hint carry no secret. The raw
 * cause is not attached: its text may hold a connection string.
 */
export function safeError(ctx: EngineContext, error: unknown, code: BackupErrorCode, prefix?: string): BackupError {
  const be = BackupError.isInstance(error) ? error : undefined;
  const raw = error instanceof Error ? error.message : String(error);
  const message = ctx.redact(prefix && !raw.startsWith(`${prefix}:`) ? `${prefix}: ${raw}` : raw);
  return new BackupError(be?.code ?? code, message, {
    retryable: be?.retryable ?? false,
    ...(be?.hint ? { hint: ctx.redact(be.hint) } : {}),
    ...(be?.component || prefix ? { component: be?.component ?? prefix } : {}),
    ...(be?.details ? { details: JSON.parse(ctx.redact(JSON.stringify(be.details))) as Record<string, unknown> } : {}),
  });
}

export function errorReport(error: Error | undefined): ErrorReport | undefined {
  if (!error) return undefined;
  const be = BackupError.isInstance(error) ? error : undefined;
  return {
    code: be?.code ?? 'INTERNAL',
    message: error.message,
    ...(be?.hint ? { hint: be.hint } : {}),
    ...(be?.component ? { component: be.component } : {}),
  };
}

export async function putBuffer(storage: Storage, key: string, body: string | Buffer, signal?: AbortSignal, retainUntil?: Date): Promise<void> {
  const buf = typeof body === 'string' ? Buffer.from(body) : body;
  await storage.put(key, Readable.from([buf]), { size: buf.length, ...(signal ? { signal } : {}), ...(retainUntil ? { retainUntil } : {}) });
}

/** Deletes every object of a set, manifest first so a half-deleted set never looks complete. */
export async function deleteSet(storage: Storage, setId: string, keys: string[]): Promise<{ key: string; error: string }[]> {
  const failed: { key: string; error: string }[] = [];
  const manifestKey = `${setId}/manifest.json`;
  const ordered = [...keys].sort((a, b) => (a === manifestKey ? -1 : b === manifestKey ? 1 : 0));
  if (ordered[0] === manifestKey) {
    try {
      await storage.delete(manifestKey);
    } catch (error) {
      return [{ key: manifestKey, error: (error as Error).message }];
    }
    ordered.shift();
  }
  const deleteMany = storage.capabilities?.deleteMany;
  if (deleteMany && ordered.length > 0) {
    const res = await deleteMany(ordered);
    failed.push(...res.failed);
  } else {
    for (const key of ordered) {
      try {
        await storage.delete(key);
      } catch (error) {
        failed.push({ key, error: (error as Error).message });
      }
    }
  }
  const localFiles = storage.capabilities?.localFiles;
  if (failed.length === 0 && localFiles) {
    try {
      await localFiles.deletePrefix(`${setId}/`);
    } catch (error) {
      failed.push({ key: `${setId}/`, error: (error as Error).message });
    }
  }
  return failed;
}

export interface AuditInput {
  action: string;
  setId?: string;
  components?: string[];
  result: string;
  error?: string;
  details?: Record<string, unknown>;
}

/** Appends to the audit log of each storage; an audit failure is logged, never fatal. */
export async function audit(ctx: EngineContext, storages: Storage[], entry: AuditInput): Promise<void> {
  await Promise.all(
    storages.map(async (storage) => {
      try {
        const log = createAuditLog(storage, { actor: ctx.actor });
        await log.append({
          ...entry,
          ...(entry.error ? { error: ctx.redact(entry.error) } : {}),
        });
      } catch (error) {
        ctx.logger.warn(`could not append to the audit log on ${storage.name}: ${ctx.redact((error as Error).message)}`);
      }
    }),
  );
}

export function linkSignal(parent?: AbortSignal): AbortController {
  const controller = new AbortController();
  if (parent) {
    if (parent.aborted) controller.abort(parent.reason);
    else parent.addEventListener('abort', () => controller.abort(parent.reason), { once: true });
  }
  return controller;
}
