import pLimit from 'p-limit';
import { pipeline } from 'node:stream/promises';
import type { Storage } from '../interfaces/storage.js';
import type { BackupSource, SourceBackupContext } from '../interfaces/source.js';
import type { ArtifactRecord, ComponentManifest, Manifest } from '../manifest/manifest-schema.js';
import { MANIFEST_FILE, MANIFEST_FORMAT_VERSION, SUMS_FILE } from '../manifest/manifest-schema.js';
import { serializeManifest } from '../manifest/parse-manifest.js';
import { formatSha256Sums } from '../sha256sums/sha256sums.js';
import { BackupError, LockError, isAbortError } from '../errors/backup-error.js';
import { openArtifactSink, toReadable } from '../pipeline/artifact-sink.js';
import { fileArtifactPlan, openFileArtifact, type FileArtifact } from '../pipeline/file-artifact.js';
import { retainUntilForTier } from '../retention/retain-until.js';
import type { HeldLock } from '../lock/storage-lock.js';
import { lockStorages } from './lock-storages.js';
import { compactStamp, isoWithOffset } from '../util/time-zone.js';
import { LIBRARY_NAME, LIBRARY_VERSION } from '../util/version.js';
import type { BackupOptions, BackupResult, ComponentOutcome, StorageOutcome } from './types.js';
import type { EngineContext } from './engine-context.js';
import { audit, deleteSet, errorReport, linkSignal, putBuffer, safeError, withPrefix } from './engine-helpers.js';
import { readPrimaryCatalog } from './set-catalog.js';
import { DEFAULT_ANOMALY_DROP, detectSizeAnomalies, type SizeAnomaly } from '../anomaly/size-anomaly.js';
import { defaultConcurrency } from './defaults.js';

/** Anomalies against the newest earlier set of the tier; a catalog that cannot be read skips the check. */
async function findAnomalies(ctx: EngineContext, tier: string, components: ComponentManifest[]): Promise<SizeAnomaly[]> {
  const fraction = ctx.options.anomalyDrop ?? DEFAULT_ANOMALY_DROP;
  if (fraction === false) return [];
  try {
    const { catalog } = await readPrimaryCatalog(ctx);
    const previous = catalog.find((e) => e.tier === tier && e.manifest && e.status !== 'incomplete')?.manifest;
    return detectSizeAnomalies(previous, components, fraction);
  } catch (error) {
    ctx.logger.warn(`size anomaly check skipped: ${ctx.redact((error as Error).message)}`);
    return [];
  }
}

export function selectSources(ctx: EngineContext, components: string[] | undefined): BackupSource[] {
  if (!components || components.length === 0) return ctx.sources;
  const known = ctx.sources.map((s) => s.name);
  const unknown = components.filter((c) => !known.includes(c));
  if (unknown.length > 0) {
    throw new BackupError('COMPONENT_UNKNOWN', `unknown component ${unknown.map((u) => `"${u}"`).join(', ')}; configured components: ${known.join(', ') || '(none)'}`, {
      hint: 'Use one of the configured component names with --component.',
    });
  }
  return ctx.sources.filter((s) => components.includes(s.name));
}

async function allocateSetId(ctx: EngineContext, storages: Storage[], started: Date): Promise<string> {
  const base = `${ctx.setPrefix}_${compactStamp(started, ctx.timeZone)}`;
  const taken = new Set<string>();
  for (const storage of storages) {
    for (const entry of await storage.list(base)) taken.add(entry.key.split('/')[0]!);
  }
  if (!taken.has(base)) return base;
  for (let n = 2; ; n++) if (!taken.has(`${base}-${n}`)) return `${base}-${n}`;
}

function jsonSafe(ctx: EngineContext, value: Record<string, unknown>): Record<string, unknown> {
  return JSON.parse(ctx.redact(JSON.stringify(value ?? {}))) as Record<string, unknown>;
}

export async function runBackup(ctx: EngineContext, options: BackupOptions = {}): Promise<BackupResult> {
  const tier = options.tier ?? 'manual';
  if (!/^[a-z][a-z0-9-]*$/.test(tier)) {
    throw new BackupError('USAGE', `tier "${tier}" must be lower-case letters, digits and dashes (daily, weekly, monthly, manual)`);
  }
  const sources = selectSources(ctx, options.components);
  if (sources.length === 0) {
    throw new BackupError('CONFIG_INVALID', 'no sources are configured, so there is nothing to back up', {
      hint: 'Configure at least one source (e.g. DATABASE_URL, REDIS_URL or QDRANT_URL).',
    });
  }
  const runStart = Date.now();
  const started = ctx.clock();
  const { locks, live: lockedStorages, failed: unavailable } = await lockStorages(ctx, 'backup', ctx.storages);
  const live = new Set<Storage>(lockedStorages);
  const storageOutcomes = new Map<string, StorageOutcome>(unavailable.map((u) => [u.name, u]));
  const markStorageFailed = (storage: Storage, error: unknown) => {
    if (!live.delete(storage)) return;
    const err = safeError(ctx, error, 'STORAGE_FAILED', storage.name);
    ctx.logger.error(`storage ${storage.name} failed; the set continues on the other storages: ${err.message}`);
    storageOutcomes.set(storage.name, { name: storage.name, ok: false, error: err });
  };
  const controller = linkSignal(options.signal);
  let setId = '';
  try {
    setId = await allocateSetId(ctx, [...live], started);
    ctx.logger.info(`backup ${setId} started`, { setId, tier, components: sources.map((s) => s.name) });
    await ctx.notify({ type: 'backup.started', outcome: 'start', setId, tier, components: sources.map((s) => ({ name: s.name, status: 'skipped' })) });

    // Storages that lock objects (S3 Object Lock) keep this set's objects as long as the
    // tier's retention is sure to keep the set.
    const retainUntil = retainUntilForTier(ctx.options.retention, tier, started);
    // Components run at once up to the limit; Promise.all keeps the manifest in configured order.
    const limit = pLimit(ctx.concurrency ?? defaultConcurrency(sources.length));
    const outcomes = await Promise.all(
      sources.map((source) =>
        limit(() => backupComponent({ ctx, source, setId, tier, retainUntil, live, markStorageFailed, signal: controller.signal, options })),
      ),
    );

    const okOutcomes = outcomes.filter((o) => o.outcome.status === 'ok');
    let status: BackupResult['status'] = okOutcomes.length === outcomes.length ? 'complete' : okOutcomes.length > 0 ? 'partial' : 'failed';
    let manifest: Manifest | undefined;
    let error: Error | undefined;
    const anomalies = status === 'failed' || controller.signal.aborted ? [] : await findAnomalies(ctx, tier, outcomes.map((o) => o.manifest));
    for (const a of anomalies) {
      const o = outcomes.find((x) => x.outcome.name === a.component)!;
      o.manifest.warnings.push(a.message);
      // The outcome and the manifest entry may share one warnings array.
      if (o.outcome.warnings !== o.manifest.warnings) o.outcome.warnings.push(a.message);
      ctx.logger.warn(`${a.component}: ${a.message}`, { component: a.component });
    }
    if (controller.signal.aborted) {
      status = 'failed';
      error = new BackupError('ABORTED', `backup ${setId} was aborted; no set was recorded`, { retryable: true });
    }
    if (status !== 'failed') {
      const finished = ctx.clock();
      manifest = {
        formatVersion: MANIFEST_FORMAT_VERSION,
        id: setId,
        tier,
        status: status === 'complete' ? 'complete' : 'partial',
        startedAt: isoWithOffset(started, ctx.timeZone),
        finishedAt: isoWithOffset(finished, ctx.timeZone),
        timeZone: ctx.timeZone,
        host: ctx.host,
        library: { name: LIBRARY_NAME, version: LIBRARY_VERSION },
        components: outcomes.map((o) => o.manifest),
        ...encryptionInfo(ctx),
        storages: [...live].map((s) => s.name),
        tags: options.tags ?? [],
        ...(anomalies.length ? { anomalies } : {}),
      };
      const sums = formatSha256Sums(
        okOutcomes.flatMap((o) => o.manifest.artifacts.map((a) => ({ path: a.path, sha256: a.sha256 }))),
      );
      const body = serializeManifest(manifest);
      await Promise.all(
        [...live].map(async (storage) => {
          try {
            await putBuffer(storage, `${setId}/${SUMS_FILE}`, sums, controller.signal, retainUntil);
            // The manifest is the commit marker: written last, after every artifact and the sums.
            await putBuffer(storage, `${setId}/${MANIFEST_FILE}`, body, controller.signal, retainUntil);
          } catch (err) {
            markStorageFailed(storage, err);
          }
        }),
      );
      if (live.size === 0) {
        status = 'failed';
        error = new BackupError('STORAGE_FAILED', `backup ${setId}: no storage accepted the manifest`, { retryable: true });
        manifest = undefined;
      } else {
        manifest = { ...manifest, storages: [...live].map((s) => s.name) };
      }
    }
    if (status === 'failed') {
      error ??= new BackupError('SOURCE_FAILED', `backup ${setId} failed: every component failed (${outcomes.map((o) => withPrefix(o.outcome.name, o.outcome.error?.message ?? 'failed')).join('; ')})`, {
        hint: 'See each component error; nothing was recorded as a backup set.',
      });
      await cleanupLeftovers(ctx, lockedStorages, setId);
    }
    for (const storage of lockedStorages) {
      if (!storageOutcomes.has(storage.name)) storageOutcomes.set(storage.name, { name: storage.name, ok: live.has(storage) });
    }
    const components = outcomes.map((o) => o.outcome);
    const bytes = components.reduce((n, c) => n + c.bytes, 0);
    const result: BackupResult = {
      setId,
      tier,
      status,
      components,
      storages: [...storageOutcomes.values()],
      bytes,
      durationMs: Date.now() - runStart,
      ...(manifest ? { manifest } : {}),
      ...(error ? { error } : {}),
    };
    ctx.logger[status === 'complete' ? 'info' : 'error'](`backup ${setId} ${status}`, {
      setId,
      status,
      bytes,
      durationMs: result.durationMs,
      failed: components.filter((c) => c.status === 'failed').map((c) => c.name),
    });
    await audit(ctx, lockedStorages, {
      action: 'backup',
      setId,
      components: components.map((c) => c.name),
      result: status === 'complete' ? 'ok' : status,
      ...(error || status === 'partial'
        ? { error: error?.message ?? components.filter((c) => c.error).map((c) => withPrefix(c.name, c.error!.message)).join('; ') }
        : {}),
      details: { tier, bytes },
    });
    await ctx.notify({
      type: status === 'complete' ? 'backup.succeeded' : status === 'partial' ? 'backup.partial' : 'backup.failed',
      outcome: status === 'complete' ? 'success' : status === 'partial' ? 'partial' : 'failure',
      setId,
      tier,
      durationMs: result.durationMs,
      bytes,
      components: components.map((c) => ({
        name: c.name,
        status: c.status,
        bytes: c.bytes,
        durationMs: c.durationMs,
        ...(c.error ? { error: errorReport(c.error)! } : {}),
      })),
      ...(error ? { error: errorReport(error)! } : {}),
      storages: result.storages.map((s) => `${s.name}: ${s.ok ? 'ok' : `failed (${s.error?.message ?? 'unknown'})`}`),
      ...(anomalies.length ? { details: anomalies.map((a) => `WARNING ${a.component}: ${a.message}`) } : {}),
    });
    return result;
  } finally {
    await Promise.all(locks.map((l) => l.release()));
  }
}

function encryptionInfo(ctx: EngineContext): Pick<Manifest, 'encryption'> | Record<string, never> {
  const enc = ctx.codecs.find((c) => c.kind === 'encryption');
  if (!enc) return {};
  const params = enc.describe().params ?? {};
  const recipients = Array.isArray(params.recipients) ? params.recipients.map(String) : [];
  return { encryption: { codec: enc.name, recipients } };
}

async function cleanupLeftovers(ctx: EngineContext, storages: Storage[], setId: string): Promise<void> {
  if (!setId) return;
  for (const storage of storages) {
    try {
      const keys = (await storage.list(`${setId}/`)).map((e) => e.key);
      if (keys.length > 0) await deleteSet(storage, setId, keys);
    } catch (error) {
      ctx.logger.warn(`could not remove the leftovers of ${setId} on ${storage.name} (prune will): ${ctx.redact((error as Error).message)}`);
    }
  }
}

/** Everything one component's backup needs from its run. */
interface ComponentRun {
  ctx: EngineContext;
  source: BackupSource;
  setId: string;
  tier: string;
  /** Object Lock date for this set's objects, when the tier's retention gives one. */
  retainUntil: Date | undefined;
  /** The storages still taking this set; a failing one is removed through `markStorageFailed`. */
  live: Set<Storage>;
  markStorageFailed: (storage: Storage, error: unknown) => void;
  /** The run's signal; the component links its own to it. */
  signal: AbortSignal;
  options: BackupOptions;
}

async function backupComponent(run: ComponentRun): Promise<{ outcome: ComponentOutcome; manifest: ComponentManifest }> {
  const { ctx, source, setId, tier, retainUntil, live, markStorageFailed, signal: parentSignal, options } = run;
  const started = ctx.clock();
  const t0 = Date.now();
  const controller = linkSignal(parentSignal);
  const signal = controller.signal;
  // Every artifact opened: a stream sink (artifact()) or a file a program writes (artifactFile()).
  const sinks: { name: string; ended: () => boolean; destroy: (error: Error) => void; record: Promise<ArtifactRecord> }[] = [];
  const claim = (name: string) => {
    if (signal.aborted) throw new BackupError('ABORTED', `${source.name}: backup aborted`, { component: source.name });
    if (names.has(name)) throw new BackupError('INTERNAL', `${source.name}: artifact "${name}" was written twice`, { component: source.name });
    names.add(name);
  };
  const onBytes = (name: string) => (bytes: number) => options.onProgress?.({ phase: 'upload', component: source.name, artifact: name, bytes });
  const names = new Set<string>();
  const logger = ctx.logger;
  const sctx: SourceBackupContext = {
    setId,
    tier,
    signal,
    logger,
    artifact(name, artifactOptions = {}) {
      claim(name);
      const opened = openArtifactSink({
        setId,
        component: source.name,
        name,
        options: artifactOptions,
        engineCodecs: ctx.codecs,
        storages: [...live],
        signal,
        onBytes: onBytes(name),
        onStorageError: markStorageFailed,
        ...(retainUntil ? { retainUntil } : {}),
      });
      const sink = opened.sink;
      sinks.push({ name, ended: () => sink.writableEnded, destroy: (error) => !sink.destroyed && sink.destroy(error), record: opened.record });
      return sink;
    },
    async artifactFile(name, artifactOptions) {
      const storages = [...live];
      const plan = await fileArtifactPlan(storages, ctx.codecs, artifactOptions);
      if (!plan) return undefined;
      claim(name);
      let file: FileArtifact;
      try {
        file = await openFileArtifact({ setId, component: source.name, name, options: artifactOptions, engineCodecs: ctx.codecs, storage: storages[0]!, signal, onBytes: onBytes(name), plan });
      } catch (error) {
        // A storage that cannot create the file is failing; an encryption program that cannot start is not the storage's fault.
        const code = BackupError.isInstance(error) ? error.code : undefined;
        if (!signal.aborted && code !== 'CODEC_FAILED' && code !== 'TOOL_MISSING' && code !== 'ABORTED') markStorageFailed(storages[0]!, error);
        throw error;
      }
      sinks.push({ name, ended: () => file.finished, destroy: (error) => file.destroy(error), record: file.record });
      return file;
    },
    async writeArtifact(name, body, artifactOptions) {
      const sink = sctx.artifact(name, artifactOptions);
      await pipeline(toReadable(body), sink, { signal });
    },
    acceptsPrecompressed: true,
  };
  try {
    if (signal.aborted) throw new BackupError('ABORTED', `${source.name}: backup aborted before it started`, { component: source.name });
    const result = await source.backup(sctx);
    const unfinished = sinks.filter((s) => !s.ended());
    if (unfinished.length > 0) {
      throw new BackupError('SOURCE_FAILED', `${source.name}: the source returned before finishing ${unfinished.map((u) => u.name).join(', ')}`, {
        component: source.name,
      });
    }
    const artifacts = await Promise.all(sinks.map((s) => s.record));
    if (signal.aborted) throw new BackupError('ABORTED', `${source.name}: backup aborted`, { component: source.name });
    const finished = ctx.clock();
    const bytes = artifacts.reduce((n, a) => n + a.size, 0);
    for (const a of artifacts) options.onProgress?.({ phase: 'upload', component: source.name, artifact: a.name, bytes: a.size, done: true });
    const warnings = (result.warnings ?? []).map(ctx.redact);
    return {
      outcome: {
        name: source.name,
        status: 'ok',
        bytes,
        durationMs: Date.now() - t0,
        artifacts: artifacts.map((a) => ({ name: a.name, path: a.path, size: a.size, sha256: a.sha256 })),
        warnings,
      },
      manifest: {
        name: source.name,
        status: 'ok',
        startedAt: isoWithOffset(started, ctx.timeZone),
        finishedAt: isoWithOffset(finished, ctx.timeZone),
        durationMs: Date.now() - t0,
        artifacts,
        metadata: jsonSafe(ctx, result.metadata ?? {}),
        warnings,
      },
    };
  } catch (raw) {
    controller.abort(raw);
    for (const s of sinks) s.destroy(raw instanceof Error ? raw : new Error(String(raw)));
    await Promise.allSettled(sinks.map((s) => s.record));
    const code = isAbortError(raw) || parentSignal.aborted ? 'ABORTED' : 'SOURCE_FAILED';
    const error = safeError(ctx, raw, code, source.name);
    logger.error(`${source.name} failed: ${error.message.startsWith(`${source.name}: `) ? error.message.slice(source.name.length + 2) : error.message}`, { component: source.name, code: error.code });
    // Artifacts of a failed component must not linger beside a manifest that omits them.
    for (const storage of live) {
      try {
        const keys = (await storage.list(`${setId}/${source.name}/`)).map((e) => e.key);
        for (const key of keys) await storage.delete(key);
      } catch (cleanupError) {
        logger.warn(`could not remove ${source.name}'s partial artifacts from ${storage.name}: ${ctx.redact((cleanupError as Error).message)}`);
      }
    }
    const finished = ctx.clock();
    return {
      outcome: { name: source.name, status: 'failed', bytes: 0, durationMs: Date.now() - t0, artifacts: [], error, warnings: [] },
      manifest: {
        name: source.name,
        status: 'failed',
        startedAt: isoWithOffset(started, ctx.timeZone),
        finishedAt: isoWithOffset(finished, ctx.timeZone),
        durationMs: Date.now() - t0,
        artifacts: [],
        metadata: {},
        warnings: [],
        error: { code: error.code, message: error.message, ...(error.hint ? { hint: error.hint } : {}) },
      },
    };
  }
}
