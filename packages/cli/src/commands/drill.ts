import { BackupError, type DrillResult } from '@scholaria/backup-core';
import { EXIT } from '../exit-codes.js';
import { withRuntime, type CommandContext } from '../command-context.js';
import type { CliRuntime } from '../runtime.js';
import { createProgress } from '../progress.js';
import { formatDuration } from '../format.js';

export interface DrillCommandOptions {
  component: string[];
}

export function drillJson(result: DrillResult) {
  return { ok: result.status === 'passed', ...result };
}

/** Runs one drill with the runtime's targets and joins; shared by the command and the scheduler. */
export async function runDrillWith(rt: CliRuntime, options: { ref?: string; components?: string[]; signal: AbortSignal; onProgress?: Parameters<CliRuntime['engine']['drill']>[0]['onProgress'] }): Promise<DrillResult> {
  if (rt.drill.targets.length === 0) {
    throw new BackupError('CONFIG_INVALID', 'no drill targets are configured', {
      hint: 'Configure the components (DATABASE_URL, REDIS_URL, QDRANT_URL) or, in a config file, drill.targets; see docs/drills.md.',
    });
  }
  return await rt.engine.drill({
    ref: options.ref ?? 'latest',
    targets: rt.drill.targets,
    joins: rt.drill.joins,
    maxMismatches: rt.drill.maxMismatches,
    signal: options.signal,
    ...(options.components?.length ? { components: options.components } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
}

export function drillLines(result: DrillResult): string[] {
  const lines: string[] = [];
  lines.push(`${result.status === 'passed' ? 'PASSED' : 'FAILED'} drill ${result.drillId} of ${result.setId} (${result.tier}): restore time (RTO) ${formatDuration(result.rto.totalMs)}`);
  for (const c of result.components) {
    lines.push(`  ${c.status === 'ok' ? 'restored' : 'FAILED  '} ${c.name} into ${c.target} in ${formatDuration(c.restoreMs)}${c.error ? `: ${c.error.message}` : ''}`);
  }
  for (const check of result.checks) {
    const mark = check.status === 'pass' ? 'PASS' : check.status === 'fail' ? 'FAIL' : 'SKIP';
    lines.push(`  ${mark} ${check.component ? `${check.component} ` : ''}${check.name}: ${check.message}`);
    for (const m of check.mismatches ?? []) lines.push(`         - ${m}`);
  }
  if (result.removedLeftovers.length) lines.push(`  removed leftovers of earlier drills: ${result.removedLeftovers.join(', ')}`);
  lines.push(result.cleanedUp.length ? `  removed this drill's targets: ${result.cleanedUp.join(', ')}` : '  no throwaway target left to remove');
  for (const p of result.cleanupProblems) lines.push(`  warning: cleanup: ${p}`);
  return lines;
}

export async function drillCommand(ctx: CommandContext, ref: string | undefined, options: DrillCommandOptions): Promise<number> {
  return await withRuntime(ctx, 'drill', async ({ rt, fileLog }) => {
    const progress = createProgress(ctx.out, { tty: ctx.io.isTTY, enabled: !ctx.json });
    let result: DrillResult;
    try {
      result = await runDrillWith(rt, { ref: ref ?? 'latest', components: options.component, signal: ctx.signal, onProgress: (e) => progress.onProgress(e) });
    } finally {
      progress.stop();
    }
    fileLog[result.status === 'passed' ? 'info' : 'error'](`drill ${result.drillId} ${result.status}`, { drillId: result.drillId, setId: result.setId, rto: result.rto });
    if (ctx.json) ctx.out.document(drillJson(result));
    else {
      for (const line of drillLines(result)) ctx.out.line(line);
      if (result.error && result.status !== 'passed') {
        ctx.out.note(`error: ${result.error.message}`);
        if (result.error.hint) ctx.out.note(`hint: ${result.error.hint}`);
      }
    }
    return result.status === 'passed' ? EXIT.OK : EXIT.FAILURE;
  });
}
