import { BackupError, LockError } from '../errors/backup-error.js';
import type { BackupSource } from '../interfaces/source.js';
import { lockStorages } from '../engine/lock-storages.js';
import type { ComponentManifest, Manifest } from '../manifest/manifest-schema.js';
import { isoWithOffset } from '../util/time-zone.js';
import type { EngineContext } from '../engine/engine-context.js';
import { resolveSet } from '../engine/set-catalog.js';
import { runRestore } from '../engine/run-restore.js';
import { audit, errorReport, linkSignal, safeError } from '../engine/engine-helpers.js';
import type { DrillCheck, DrillComponentResult, DrillOptions, DrillResult, DrillTarget, DrillTargetContext } from './drill-types.js';
import { newDrillId } from './drill-names.js';
import { joinCheck, joinIds } from './cross-store-join.js';
import { writeDrillRecord } from './drill-record.js';

function checkTargets(targets: DrillTarget[]): void {
  const problems: string[] = [];
  const seen = new Set<string>();
  targets.forEach((t, i) => {
    if (!t || t.specVersion !== 'v1') problems.push(`targets[${i}] (${String(t?.component ?? 'unnamed')}) has specVersion ${JSON.stringify(t?.specVersion)}; this core supports 'v1'`);
    if (seen.has(t?.component)) problems.push(`targets: two drill targets take component "${t.component}"`);
    seen.add(t?.component);
  });
  if (problems.length) throw new BackupError('CONFIG_INVALID', `invalid drill targets: ${problems.join('; ')}`, { hint: 'Pass one drill target per component (createPostgresDrillTarget, createRedisDrillTarget, createQdrantDrillTarget).' });
}

function pick(setId: string, components: ComponentManifest[], targets: DrillTarget[], requested?: string[]) {
  const byName = new Map(targets.map((t) => [t.component, t] as const));
  if (requested && requested.length > 0) {
    const problems: string[] = [];
    const chosen: { component: ComponentManifest; target: DrillTarget }[] = [];
    for (const name of requested) {
      const c = components.find((x) => x.name === name);
      const t = byName.get(name);
      if (!c) problems.push(`set ${setId} has no component "${name}"`);
      else if (c.status !== 'ok') problems.push(`component "${name}" failed in set ${setId}`);
      else if (!t) problems.push(`no drill target is configured for "${name}"`);
      else chosen.push({ component: c, target: t });
    }
    if (problems.length) throw new BackupError('COMPONENT_UNKNOWN', `cannot drill: ${problems.join('; ')}`, { hint: 'Pick components the set holds and the drill configuration has a target for.' });
    return { chosen, skipped: [] as string[] };
  }
  const chosen = components.filter((c) => c.status === 'ok' && byName.has(c.name)).map((c) => ({ component: c, target: byName.get(c.name)! }));
  const skipped = components
    .filter((c) => !chosen.some((x) => x.component === c))
    .map((c) => `${c.name} (${c.status !== 'ok' ? 'failed in this set' : 'no drill target configured'})`);
  if (chosen.length === 0) {
    throw new BackupError('COMPONENT_UNKNOWN', `nothing to drill in ${setId}: ${skipped.join(', ') || 'the set has no components'}`, {
      hint: 'Configure drill targets for the components of the set (see docs/drills.md).',
    });
  }
  return { chosen, skipped };
}

/** Restores a set into throwaway targets, checks the copy, measures the RTO and removes the targets again. */
export async function runDrill(ctx: EngineContext, options: DrillOptions): Promise<DrillResult> {
  checkTargets(options.targets ?? []);
  const t0 = Date.now();
  const started = ctx.clock();
  const drillId = newDrillId(started);
  const { entry } = await resolveSet(ctx, options.ref ?? 'latest');
  const manifest = entry.manifest;
  const setId = manifest.id;
  const { chosen, skipped } = pick(setId, manifest.components, options.targets, options.components);
  // One drill at a time, across processes and hosts: the drill holds the storages' run lock
  // (the one backups, prunes and restores take) from its sweep to its cleanup, so a second
  // drill is refused at once, and no other drill's sweep can run while this one's targets exist.
  let held: Awaited<ReturnType<typeof lockStorages>>;
  try {
    held = await lockStorages(ctx, 'drill', ctx.storages);
  } catch (error) {
    if (!(error instanceof LockError || (BackupError.isInstance(error) && error.code === 'LOCKED'))) throw error;
    const e = error as BackupError;
    throw new LockError(`cannot start drill of ${setId}: ${e.message}`, {
      hint: 'Only one drill (or backup, prune or restore) runs at a time; this one did not start. Run it again once the other has finished.',
      ...(e.details ? { details: e.details } : {}),
    });
  }
  try {
    return await drillLocked(ctx, options, { t0, started, drillId, manifest, setId, chosen, skipped, held });
  } finally {
    await Promise.all(held.locks.map((l) => l.release()));
  }
}

interface DrillPlan {
  t0: number;
  started: Date;
  drillId: string;
  manifest: Manifest;
  setId: string;
  chosen: { component: ComponentManifest; target: DrillTarget }[];
  skipped: string[];
  held: Awaited<ReturnType<typeof lockStorages>>;
}

/** Where a drill's restore goes: the engine's sources, except components whose target brings its own (a drill server). */
function drillContext(ctx: EngineContext, chosen: DrillPlan['chosen']): EngineContext {
  const own = new Map<string, BackupSource>();
  for (const { component, target } of chosen) {
    if (!target.source) continue;
    if (target.source.name !== component.name) {
      throw new BackupError('CONFIG_INVALID', `the drill target of "${component.name}" restores through a source named "${target.source.name}"`, { hint: 'A drill target\'s own source must carry the component\'s name.' });
    }
    own.set(component.name, target.source);
  }
  return own.size ? { ...ctx, sources: ctx.sources.map((s) => own.get(s.name) ?? s) } : ctx;
}

async function drillLocked(ctx: EngineContext, options: DrillOptions, plan: DrillPlan): Promise<DrillResult> {
  const { t0, started, drillId, manifest, setId, chosen, skipped, held } = plan;
  const controller = linkSignal(options.signal);
  const signal = controller.signal;
  const maxMismatches = options.maxMismatches ?? 10;
  const tctx = (component: ComponentManifest): DrillTargetContext => ({ drillId, setId, manifest, component, signal, logger: ctx.logger, maxMismatches });
  const describe = (c: { component: ComponentManifest; target: DrillTarget }): string => {
    try {
      return c.target.describe(tctx(c.component));
    } catch {
      return `${c.component.name} drill target`;
    }
  };
  const checks: DrillCheck[] = [];
  const components: DrillComponentResult[] = [];
  const removedLeftovers: string[] = [];
  const cleanedUp: string[] = [];
  const cleanupProblems: string[] = [];
  let failure: Error | undefined;
  let restoreMs = 0;
  ctx.logger.info(`drill ${drillId} of ${setId} started`, { drillId, setId, components: chosen.map((c) => c.component.name) });

  // What a killed drill left behind is found by name and removed first.
  for (const { target, component } of chosen) {
    try {
      removedLeftovers.push(...(await target.sweep({ except: drillId, component, signal, logger: ctx.logger })));
    } catch (error) {
      cleanupProblems.push(`${target.component}: could not look for leftovers of earlier drills: ${ctx.redact((error as Error).message)}`);
    }
  }
  if (removedLeftovers.length) ctx.logger.warn(`drill ${drillId}: removed leftovers of earlier drills: ${removedLeftovers.join(', ')}`);

  const prepared: { component: ComponentManifest; target: DrillTarget }[] = [];
  try {
    const componentOptions: Record<string, Record<string, unknown>> = {};
    for (const c of chosen) {
      componentOptions[c.component.name] = await c.target.prepare(tctx(c.component));
      prepared.push(c);
    }
    const r0 = Date.now();
    const restore = await runRestore(
      drillContext(ctx, chosen),
      { ref: setId, components: chosen.map((c) => c.component.name), componentOptions, signal, ...(options.onProgress ? { onProgress: options.onProgress } : {}) },
      { action: 'drill', quiet: true, held },
    );
    restoreMs = Date.now() - r0;
    for (const c of chosen) {
      const outcome = restore.components.find((o) => o.name === c.component.name);
      components.push({
        name: c.component.name,
        target: describe(c),
        status: outcome?.status === 'ok' ? 'ok' : 'failed',
        restoreMs: outcome?.durationMs ?? 0,
        ...(outcome?.error ? { error: errorReport(outcome.error)! } : {}),
      });
    }
    if (restore.status !== 'ok') {
      const bad = restore.components.find((o) => o.error)?.error;
      failure = bad ?? new BackupError('RESTORE_FAILED', `drill ${drillId}: the restore of ${setId} failed`);
    }
    for (const c of chosen) {
      if (components.find((x) => x.name === c.component.name)?.status !== 'ok') continue;
      try {
        checks.push(...(await c.target.check(tctx(c.component))));
      } catch (error) {
        const e = safeError(ctx, error, 'VERIFY_FAILED', c.component.name);
        checks.push({ name: 'checks', component: c.component.name, status: 'fail', message: `the checks could not run: ${e.message}` });
      }
    }
    for (const join of options.joins ?? []) checks.push(await runJoin(ctx, join, chosen, components, tctx));
  } catch (error) {
    failure = safeError(ctx, error, 'RESTORE_FAILED');
    ctx.logger.error(`drill ${drillId} failed: ${failure.message}`);
    for (const c of chosen) {
      if (!components.some((x) => x.name === c.component.name)) {
        components.push({ name: c.component.name, target: describe(c), status: 'failed', restoreMs: 0, error: errorReport(failure)! });
      }
    }
  } finally {
    // Cleanup runs after a failure or an abort too; a kill leaves the targets to the next sweep.
    for (const { component, target } of prepared) {
      try {
        cleanedUp.push(...(await target.cleanup({ ...tctx(component), signal: new AbortController().signal })));
      } catch (error) {
        cleanupProblems.push(`${component.name}: ${ctx.redact((error as Error).message)} (the next drill removes it)`);
      }
    }
  }

  const failedChecks = checks.filter((c) => c.status === 'fail');
  const passed = !failure && failedChecks.length === 0 && components.every((c) => c.status === 'ok');
  if (!failure && failedChecks.length) {
    failure = new BackupError('VERIFY_FAILED', `drill ${drillId} of ${setId}: ${failedChecks.length} check(s) failed: ${failedChecks.map((c) => `${c.component ? `${c.component} ` : ''}${c.name}: ${c.message}`).join('; ')}`, {
      hint: 'The set restored but does not agree with its manifest or across stores; inspect the mismatches, and treat the set as suspect.',
    });
  }
  const finished = ctx.clock();
  const result: DrillResult = {
    drillId,
    setId,
    tier: manifest.tier,
    status: passed ? 'passed' : 'failed',
    startedAt: isoWithOffset(started, ctx.timeZone),
    finishedAt: isoWithOffset(finished, ctx.timeZone),
    rto: { totalMs: restoreMs, components: Object.fromEntries(components.map((c) => [c.name, c.restoreMs])) },
    components,
    checks,
    removedLeftovers,
    cleanedUp,
    cleanupProblems,
    ...(failure ? { error: errorReport(failure)! } : {}),
  };
  if (skipped.length) ctx.logger.warn(`drill ${drillId}: not drilled: ${skipped.join(', ')}`);
  ctx.logger[passed ? 'info' : 'error'](`drill ${drillId} of ${setId} ${result.status}`, { drillId, setId, rtoMs: restoreMs, totalMs: Date.now() - t0 });
  for (const storage of ctx.storages) {
    try {
      await writeDrillRecord(storage, result);
    } catch (error) {
      ctx.logger.warn(`could not record drill ${drillId} on ${storage.name}: ${ctx.redact((error as Error).message)}`);
    }
  }
  await audit(ctx, ctx.storages, {
    action: 'drill',
    setId,
    components: components.map((c) => c.name),
    result: passed ? 'ok' : 'failed',
    ...(failure ? { error: failure.message } : {}),
    details: {
      drillId,
      rtoMs: result.rto,
      checks: checks.map((c) => `${c.component ? `${c.component} ` : ''}${c.name}: ${c.status}`),
      ...(removedLeftovers.length ? { removedLeftovers } : {}),
    },
  });
  await ctx.notify({
    type: passed ? 'drill.succeeded' : 'drill.failed',
    outcome: passed ? 'success' : 'failure',
    setId,
    tier: manifest.tier,
    durationMs: restoreMs,
    components: components.map((c) => ({
      name: c.name,
      status: c.status,
      durationMs: c.restoreMs,
      ...(c.error ? { error: c.error } : {}),
    })),
    details: [
      `drill ${drillId}: restore time (RTO) ${(restoreMs / 1000).toFixed(1)} s`,
      ...checks.map((c) => `${c.status.toUpperCase()} ${c.component ? `${c.component} ` : ''}${c.name}: ${c.message}${c.mismatches?.length ? ` — ${c.mismatches.join('; ')}` : ''}`),
      ...(removedLeftovers.length ? [`removed leftovers of earlier drills: ${removedLeftovers.join(', ')}`] : []),
      ...cleanupProblems.map((p) => `cleanup: ${p}`),
    ],
    ...(failure ? { error: errorReport(failure)! } : {}),
  });
  return result;
}

async function runJoin(
  ctx: EngineContext,
  join: NonNullable<DrillOptions['joins']>[number],
  chosen: { component: ComponentManifest; target: DrillTarget }[],
  components: DrillComponentResult[],
  tctx: (c: ComponentManifest) => DrillTargetContext,
): Promise<DrillCheck> {
  const name = join.name ?? `${describeSide(join.left)} ↔ ${describeSide(join.right)}`;
  const sides = [join.left, join.right].map((side) => ({ side, c: chosen.find((x) => x.component.name === side.component) }));
  const missing = sides.filter((s) => !s.c || components.find((x) => x.name === s.side.component)?.status !== 'ok');
  if (missing.length) {
    return { name: 'cross-store', status: 'skipped', message: `${name}: ${missing.map((m) => m.side.component).join(', ')} not restored in this drill` };
  }
  const [l, r] = sides as [{ side: typeof join.left; c: (typeof chosen)[number] }, { side: typeof join.right; c: (typeof chosen)[number] }];
  if (!l.c.target.joinKeys || !r.c.target.joinKeys) {
    return { name: 'cross-store', status: 'fail', message: `${name}: the drill target of ${!l.c.target.joinKeys ? l.side.component : r.side.component} cannot list join keys` };
  }
  try {
    const lctx = tctx(l.c.component);
    const res = await joinIds(l.c.target.joinKeys(lctx, l.side), r.c.target.joinKeys(tctx(r.c.component), r.side), {
      maxMismatches: lctx.maxMismatches,
      leftLabel: describeSide(l.side),
      rightLabel: describeSide(r.side),
      signal: lctx.signal,
    });
    return joinCheck(name, describeSide(l.side), describeSide(r.side), res);
  } catch (error) {
    return { name: 'cross-store', status: 'fail', message: `${name}: could not be read: ${safeError(ctx, error, 'VERIFY_FAILED').message}` };
  }
}

function describeSide(side: { component: string; table?: string; column?: string; collection?: string; payloadField?: string }): string {
  if (side.table) return `${side.table}.${side.column ?? 'id'}`;
  if (side.collection) return `${side.collection} ${side.payloadField ? `payload.${side.payloadField}` : 'point'}`;
  return side.component;
}
