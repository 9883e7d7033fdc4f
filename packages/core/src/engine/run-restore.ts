import type { Codec } from '../interfaces/codec.js';
import type { BackupSource, SourceRestoreContext } from '../interfaces/source.js';
import type { ComponentManifest } from '../manifest/manifest-schema.js';
import { BackupError } from '../errors/backup-error.js';
import { chooseDecoders, openArtifact } from '../pipeline/open-artifact.js';
import { openVerifiedFile, verifyLocalFile, type FileIdentity } from '../pipeline/local-file.js';
import { checkLocalFile } from '../pipeline/local-decoder.js';
import type { ExternalDecoder } from '../interfaces/codec.js';
import { createGzipCodec } from '../codecs/gzip-codec.js';
import { createZstdCodec } from '../codecs/zstd-codec.js';
import type { RestoreComponentOutcome, RestoreOptions, RestoreResult } from './types.js';
import type { EngineContext } from './engine-context.js';
import { resolveSet } from './set-catalog.js';
import { sumsProblems } from './set-integrity.js';
import { SUMS_FILE } from '../manifest/manifest-schema.js';
import { lockStorages } from './lock-storages.js';
import { audit, errorReport, linkSignal, safeError } from './engine-helpers.js';

function pickComponents(ctx: EngineContext, setId: string, manifestComponents: ComponentManifest[], requested?: string[]) {
  const inSet = manifestComponents.map((c) => c.name);
  const configured = new Map(ctx.sources.map((s) => [s.name, s] as const));
  const chosen: { component: ComponentManifest; source: BackupSource }[] = [];
  const skipped: string[] = [];
  if (requested && requested.length > 0) {
    const problems: string[] = [];
    for (const name of requested) {
      const component = manifestComponents.find((c) => c.name === name);
      if (!component) problems.push(`set ${setId} has no component "${name}" (it has: ${inSet.join(', ') || 'none'})`);
      else if (component.status !== 'ok') problems.push(`component "${name}" failed in set ${setId}, so it cannot be restored from it`);
      else if (!configured.has(name)) problems.push(`no source is configured for component "${name}" (configured: ${[...configured.keys()].join(', ') || 'none'})`);
      else chosen.push({ component, source: configured.get(name)! });
    }
    if (problems.length > 0) {
      throw new BackupError('COMPONENT_UNKNOWN', problems.join('; '), {
        hint: 'Choose components that the set contains and the configuration defines, or pick another set (`scholaria-backup list`).',
      });
    }
    return { chosen, skipped };
  }
  for (const component of manifestComponents) {
    if (component.status !== 'ok') skipped.push(`${component.name} (failed in this set)`);
    else if (!configured.has(component.name)) skipped.push(`${component.name} (no source configured)`);
    else chosen.push({ component, source: configured.get(component.name)! });
  }
  if (chosen.length === 0) {
    throw new BackupError('COMPONENT_UNKNOWN', `nothing to restore from ${setId}: ${skipped.join(', ') || 'the set has no components'}`, {
      hint: 'Configure the sources for the components in this set.',
    });
  }
  return { chosen, skipped };
}

/** How a caller inside core runs a restore: a drill takes the lock as 'drill' and reports on its own. */
export interface RestoreRunMode {
  action?: string;
  /** No restore.* notification and no audit entry (the drill writes its own). */
  quiet?: boolean;
  /** The caller already holds the run locks (a drill holds them from its sweep to its cleanup). */
  held?: Awaited<ReturnType<typeof lockStorages>>;
}

export async function runRestore(ctx: EngineContext, options: RestoreOptions, mode: RestoreRunMode = {}): Promise<RestoreResult> {
  const t0 = Date.now();
  const dryRun = options.dryRun ?? false;
  const unconfigured = (options.components ?? []).filter((name) => !ctx.sources.some((s) => s.name === name));
  if (unconfigured.length > 0) {
    // Before choosing 'latest' by component: a name no source has is a typo, not "no set holds it".
    throw new BackupError(
      'COMPONENT_UNKNOWN',
      `no source is configured for component ${unconfigured.map((n) => `"${n}"`).join(', ')} (configured: ${ctx.sources.map((s) => s.name).join(', ') || 'none'})`,
      { hint: 'Choose components that the configuration defines (`scholaria-backup health-check` lists them).' },
    );
  }
  const { storage, entry } = await resolveSet(ctx, options.ref, options.components ? { components: options.components } : {});
  const manifest = entry.manifest;
  const setId = manifest.id;
  const { chosen, skipped } = pickComponents(ctx, setId, manifest.components, options.components);
  const controller = linkSignal(options.signal);
  const signal = controller.signal;
  const held = dryRun ? undefined : (mode.held ?? (await lockStorages(ctx, mode.action ?? 'restore', ctx.storages)));
  const names = chosen.map((c) => c.component.name);
  try {
    ctx.logger.info(`restore of ${setId} ${dryRun ? '(dry run) ' : ''}started`, { setId, components: names, storage: storage.name });
    if (!dryRun && !mode.quiet) await ctx.notify({ type: 'restore.started', outcome: 'start', setId, tier: manifest.tier });

    // Verify before overwrite: manifest.json and SHA256SUMS must agree (what verify checks), and
    // every artifact is read in full (checksum and codecs) first.
    const verified: RestoreResult['verified'] = [];
    const disagreements = await sumsProblems(ctx, storage, setId, manifest);
    if (disagreements.length > 0) {
      const error = new BackupError('CHECKSUM_MISMATCH', `set ${setId} failed verification, nothing was restored: ${disagreements.join('; ')}`, {
        hint: 'manifest.json and SHA256SUMS were written together and must agree; one of them (or an artifact with it) was changed. Restore from another set; run `scholaria-backup verify --all` to find intact sets.',
      });
      const outcomes: RestoreComponentOutcome[] = chosen.map(({ component }) => ({ name: component.name, status: 'failed', plan: [], warnings: [], durationMs: 0, error }));
      verified.push({ path: SUMS_FILE, ok: false, error: error.message, code: error.code });
      return await finish(ctx, { setId, dryRun, status: 'failed', verified, components: outcomes, durationMs: Date.now() - t0 }, held?.live ?? [], manifest.tier, error);
    }
    const decoders = new Map<string, Codec[]>();
    const localFiles = new Map<string, { path: string; identity: FileIdentity; decoder?: ExternalDecoder }>();
    // A source may pick its own compression per artifact (postgres: zstd), so the stateless
    // built-in codecs can always decode, even when the engine is configured with others.
    const candidates = (name: string) => {
      const configured = [...ctx.codecs, ...ctx.decoders].filter((c) => c.name === name);
      if (configured.length > 0) return configured;
      return name === 'zstd' ? [createZstdCodec()] : name === 'gzip' ? [createGzipCodec()] : [];
    };
    for (const { component } of chosen) {
      for (const artifact of component.artifacts) {
        try {
          const onBytes = (bytes: number) =>
            options.onProgress?.({ phase: 'verify', component: component.name, artifact: artifact.name, bytes, totalBytes: artifact.size });
          // A plain local file with no codec is hashed with direct reads and can later be
          // handed to the source as the very file that was verified (ctx.localFile).
          const path = artifact.codecs.length === 0 ? await storage.capabilities?.localFiles?.localPath(`${setId}/${artifact.path}`) : undefined;
          if (path) {
            localFiles.set(artifact.path, { path, identity: await verifyLocalFile(path, artifact, { signal, onBytes }) });
            decoders.set(artifact.path, []);
            verified.push({ path: artifact.path, ok: true });
            continue;
          }
          // A plain local file with one codec that has a decoding program (zstd): hashed with
          // direct reads while the program checks that it decodes (`zstd -t`, reading the file
          // itself), both at once; the source can later run the decoder on the verified file.
          const only = artifact.codecs.length === 1 ? candidates(artifact.codecs[0]!.name) : [];
          const external = only.length === 1 ? await only[0]!.externalDecoder?.(artifact.codecs[0]) : undefined;
          const encodedPath = external ? await storage.capabilities?.localFiles?.localPath(`${setId}/${artifact.path}`) : undefined;
          if (external && encodedPath) {
            const [hashed, checked] = await Promise.allSettled([
              verifyLocalFile(encodedPath, artifact, { signal, onBytes }),
              checkLocalFile(encodedPath, artifact, external, signal),
            ]);
            // A checksum mismatch says more than the decoder's complaint about the same bytes.
            if (hashed.status === 'rejected') throw hashed.reason;
            if (checked.status === 'rejected') throw checked.reason;
            localFiles.set(artifact.path, { path: encodedPath, identity: hashed.value, decoder: external });
            decoders.set(artifact.path, [only[0]!]);
            verified.push({ path: artifact.path, ok: true });
            continue;
          }
          const chosenDecoders = await chooseDecoders({
            storage,
            setId,
            artifact,
            candidates,
            signal,
            onBytes,
          });
          decoders.set(artifact.path, chosenDecoders);
          verified.push({ path: artifact.path, ok: true });
        } catch (error) {
          const be = BackupError.isInstance(error) ? error : undefined;
          verified.push({
            path: artifact.path,
            ok: false,
            error: ctx.redact((error as Error).message),
            ...(be ? { code: be.code } : {}),
            ...(be?.hint ? { hint: ctx.redact(be.hint) } : {}),
          });
        }
      }
    }
    const bad = verified.filter((v) => !v.ok);
    const outcomes: RestoreComponentOutcome[] = [];
    if (bad.length > 0) {
      const allDecrypt = bad.every((b) => b.code === 'DECRYPT_FAILED');
      const error = new BackupError(
        allDecrypt ? 'DECRYPT_FAILED' : bad.some((b) => b.code === 'CHECKSUM_MISMATCH') ? 'CHECKSUM_MISMATCH' : 'VERIFY_FAILED',
        `set ${setId} failed verification, nothing was restored: ${bad.map((b) => `${b.path}: ${b.error}`).join('; ')}`,
        {
          hint: allDecrypt
            ? (bad[0]!.hint ?? 'Configure the age identity that matches the recipients this set was encrypted to (see the key ids above).')
            : 'Restore from another set or another storage; run `scholaria-backup verify --all` to find intact sets.',
        },
      );
      for (const { component } of chosen) {
        outcomes.push({ name: component.name, status: 'failed', plan: [], warnings: [], durationMs: 0, error });
      }
      return await finish(ctx, { setId, dryRun, status: 'failed', verified, components: outcomes, durationMs: Date.now() - t0 }, held?.live ?? [], manifest.tier, error, mode.quiet);
    }

    let failure: Error | undefined;
    for (const { component, source } of chosen) {
      const c0 = Date.now();
      const artifactNamed = (name: string) => {
        const artifact = component.artifacts.find((a) => a.name === name);
        if (!artifact) {
          throw new BackupError('NOT_FOUND', `${component.name}: set ${setId} has no artifact "${name}"`, { component: component.name });
        }
        return artifact;
      };
      const rctx: SourceRestoreContext = {
        setId,
        signal,
        logger: ctx.logger,
        dryRun,
        component,
        options: options.componentOptions?.[component.name] ?? {},
        timeZone: ctx.timeZone,
        async localFile(name) {
          const artifact = artifactNamed(name);
          const local = localFiles.get(artifact.path);
          return local && !local.decoder ? await openVerifiedFile(local.path, local.identity, artifact) : undefined;
        },
        async localDecodedFile(name) {
          const artifact = artifactNamed(name);
          const local = localFiles.get(artifact.path);
          if (!local?.decoder) return undefined;
          return { file: await openVerifiedFile(local.path, local.identity, artifact), decoder: local.decoder };
        },
        async open(name) {
          const artifact = artifactNamed(name);
          return await openArtifact({
            storage,
            setId,
            artifact,
            decoders: decoders.get(artifact.path)!,
            signal,
            onBytes: (bytes) => options.onProgress?.({ phase: 'restore', component: component.name, artifact: name, bytes, totalBytes: artifact.size }),
          });
        },
      };
      try {
        const res = await source.restore(rctx);
        outcomes.push({
          name: component.name,
          status: dryRun ? 'planned' : 'ok',
          plan: (res.plan ?? []).map(ctx.redact),
          warnings: (res.warnings ?? []).map(ctx.redact),
          durationMs: Date.now() - c0,
        });
      } catch (raw) {
        const error = safeError(ctx, raw, 'RESTORE_FAILED', component.name);
        failure ??= error;
        ctx.logger.error(`restore of ${component.name} from ${setId} failed: ${error.message.startsWith(`${component.name}: `) ? error.message.slice(component.name.length + 2) : error.message}`, { component: component.name });
        outcomes.push({ name: component.name, status: 'failed', plan: [], warnings: [], durationMs: Date.now() - c0, error });
      }
    }
    for (const s of skipped) outcomes.push({ name: s.split(' ')[0]!, status: 'planned', plan: [`skipped: ${s}`], warnings: [`skipped: ${s}`], durationMs: 0 });
    return await finish(
      ctx,
      { setId, dryRun, status: failure ? 'failed' : 'ok', verified, components: outcomes, durationMs: Date.now() - t0 },
      held?.live ?? [],
      manifest.tier,
      failure,
      mode.quiet,
    );
  } finally {
    if (!mode.held) await Promise.all((held?.locks ?? []).map((l) => l.release()));
  }
}

async function finish(
  ctx: EngineContext,
  result: RestoreResult,
  storages: import('../interfaces/storage.js').Storage[],
  tier: string,
  error?: Error,
  quiet?: boolean,
): Promise<RestoreResult> {
  ctx.logger[result.status === 'ok' ? 'info' : 'error'](`restore of ${result.setId} ${result.dryRun ? '(dry run) ' : ''}${result.status}`, {
    setId: result.setId,
    durationMs: result.durationMs,
  });
  if (result.dryRun || quiet) return result;
  await audit(ctx, storages, {
    action: 'restore',
    setId: result.setId,
    components: result.components.map((c) => c.name),
    result: result.status === 'ok' ? 'ok' : 'failed',
    ...(error ? { error: error.message } : {}),
  });
  await ctx.notify({
    type: result.status === 'ok' ? 'restore.succeeded' : 'restore.failed',
    outcome: result.status === 'ok' ? 'success' : 'failure',
    setId: result.setId,
    tier,
    durationMs: result.durationMs,
    components: result.components.map((c) => ({
      name: c.name,
      status: c.status === 'failed' ? 'failed' : 'ok',
      durationMs: c.durationMs,
      ...(c.error ? { error: errorReport(c.error)! } : {}),
    })),
    ...(error ? { error: errorReport(error)! } : {}),
  });
  return result;
}
