import type { BackupResult, PruneResult } from '@scholaria/backup-core';
import { EXIT } from '../exit-codes.js';
import type { CommandContext } from '../command-context.js';
import { progressMode, withRuntime } from '../command-context.js';
import { createProgress } from '../progress.js';
import { errorJson, formatBytes, formatDuration, table } from '../format.js';
import { pruneJson, printPrune } from './prune.js';

export interface BackupCommandOptions {
  tier: string;
  component: string[];
  prune: boolean;
}

export function backupJson(result: BackupResult, prune?: PruneResult, logFile?: string) {
  return {
    setId: result.setId,
    tier: result.tier,
    status: result.status,
    bytes: result.bytes,
    durationMs: result.durationMs,
    components: result.components.map((c) => ({
      name: c.name,
      status: c.status,
      bytes: c.bytes,
      durationMs: c.durationMs,
      artifacts: c.artifacts,
      warnings: c.warnings,
      error: errorJson(c.error),
    })),
    storages: result.storages.map((s) => ({ name: s.name, ok: s.ok, error: errorJson(s.error) })),
    error: errorJson(result.error),
    prune: prune ? pruneJson(prune) : null,
    logFile: logFile ?? null,
  };
}

export function backupExitCode(result: BackupResult): number {
  return result.status === 'complete' ? EXIT.OK : result.status === 'partial' ? EXIT.WARNING : EXIT.FAILURE;
}

export async function backupCommand(ctx: CommandContext, options: BackupCommandOptions): Promise<number> {
  return await withRuntime(ctx, `backup-${options.tier}`, async ({ rt, logPath }) => {
    const { out } = ctx;
    const expected = new Map<string, number>();
    if (ctx.io.isTTY && !ctx.json) {
      // The previous set's sizes give the bars a total and an ETA.
      try {
        const previous = (await rt.engine.list()).find((s) => s.manifest);
        for (const c of previous?.manifest?.components ?? []) {
          expected.set(c.name, c.artifacts.reduce((n, a) => n + a.size, 0));
        }
      } catch {
        // no estimate: the bars show bytes and rate only
      }
    }
    const progress = createProgress(out, { ...progressMode(ctx), expected });
    let result: BackupResult;
    try {
      result = await rt.engine.backup({
        tier: options.tier,
        ...(options.component.length > 0 ? { components: options.component } : {}),
        signal: ctx.signal,
        onProgress: (e) => progress.onProgress(e),
      });
    } finally {
      progress.stop();
    }
    let prune: PruneResult | undefined;
    let pruneError: unknown;
    if (options.prune && result.status !== 'failed') {
      try {
        prune = await rt.engine.prune();
      } catch (error) {
        pruneError = error;
      }
    }
    if (ctx.json) {
      out.document({ ...backupJson(result, prune, logPath()), ...(pruneError ? { pruneError: errorJson(pruneError) } : {}) });
    } else {
      out.line(`backup ${result.setId || '(no set)'} (${result.tier}): ${result.status.toUpperCase()}, ${formatBytes(result.bytes)} in ${formatDuration(result.durationMs)}`);
      out.line(
        table(
          ['COMPONENT', 'STATUS', 'SIZE', 'TIME', 'DETAIL'],
          result.components.map((c) => [
            c.name,
            c.status,
            formatBytes(c.bytes),
            formatDuration(c.durationMs),
            c.error ? `${c.error.message}` : c.warnings.length ? `warning: ${c.warnings.join('; ')}` : c.artifacts.map((a) => a.path).join(', '),
          ]),
        ),
      );
      for (const s of result.storages.filter((x) => !x.ok)) out.line(`storage ${s.name} failed: ${s.error?.message ?? 'unknown error'}`);
      if (result.error) {
        out.note(`error: ${result.error.message}`);
        const hint = (result.error as { hint?: string }).hint;
        if (hint) out.note(`hint: ${hint}`);
      }
      for (const c of result.components.filter((x) => x.error && (x.error as { hint?: string }).hint)) {
        out.note(`hint (${c.name}): ${(c.error as { hint?: string }).hint}`);
      }
      if (prune) printPrune(out, prune, rt.timeZone);
      if (logPath()) out.note(`log: ${logPath()}`);
    }
    if (pruneError) {
      out.note(`error: prune after the backup failed: ${(pruneError as Error).message}`);
      return result.status === 'complete' ? EXIT.FAILURE : backupExitCode(result);
    }
    return backupExitCode(result);
  }, { storageRoot: 'create', skipComponentErrors: true });
}
