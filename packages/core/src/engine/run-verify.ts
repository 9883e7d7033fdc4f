import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Storage } from '../interfaces/storage.js';
import { MANIFEST_FILE, SUMS_FILE } from '../manifest/manifest-schema.js';
import { VerifyStream } from '../pipeline/hash-stream.js';
import { verifyLocalFile } from '../pipeline/local-file.js';
import type { VerifyOptions, VerifyResult, VerifyFileResult } from './types.js';
import type { EngineContext } from './engine-context.js';
import { readCatalog, resolveSet, type CatalogEntry } from './set-catalog.js';
import { audit } from './engine-helpers.js';
import { okArtifacts, sumsProblems } from './set-integrity.js';

const discard = () =>
  new Writable({
    highWaterMark: 1 << 20,
    write(_c, _e, cb) {
      cb();
    },
  });

/** Re-hashes every stored artifact of a set and cross-checks manifest.json and SHA256SUMS. */
export async function verifySet(
  ctx: EngineContext,
  storage: Storage,
  entry: CatalogEntry,
  options: VerifyOptions,
): Promise<VerifyResult['sets'][number]> {
  const problems: string[] = [];
  const files: VerifyFileResult[] = [];
  const manifest = entry.manifest;
  if (!manifest) {
    problems.push(entry.problem ?? `${entry.id} has no manifest.json: the backup did not finish`);
    return { id: entry.id, storage: storage.name, ok: false, files, problems };
  }
  const artifacts = okArtifacts(manifest);
  problems.push(...(await sumsProblems(ctx, storage, entry.id, manifest)));
  const expectedKeys = new Set([...artifacts.map((a) => `${entry.id}/${a.path}`), `${entry.id}/${MANIFEST_FILE}`, `${entry.id}/${SUMS_FILE}`]);
  for (const f of entry.files) if (!expectedKeys.has(f.key)) problems.push(`unexpected file ${f.key.slice(entry.id.length + 1)} in the set`);

  for (const a of artifacts) {
    try {
      const onBytes = (bytes: number) => options.onProgress?.({ phase: 'verify', component: a.component, artifact: a.name, bytes, totalBytes: a.size });
      // A storage that keeps plain files (fs): hashed with direct 2 MiB reads, no stream stages.
      const local = await storage.capabilities?.localFiles?.localPath(`${entry.id}/${a.path}`);
      if (local) {
        await verifyLocalFile(local, a, { ...(options.signal ? { signal: options.signal } : {}), onBytes });
        files.push({ path: a.path, ok: true });
        continue;
      }
      const stream = await storage.get(`${entry.id}/${a.path}`, options.signal ? { signal: options.signal } : {});
      await pipeline(
        stream,
        new VerifyStream({ sha256: a.sha256, size: a.size, path: a.path }, (bytes) =>
          options.onProgress?.({ phase: 'verify', component: a.component, artifact: a.name, bytes, totalBytes: a.size }),
        ),
        discard(),
      );
      files.push({ path: a.path, ok: true });
    } catch (error) {
      const problem = ctx.redact((error as Error).message);
      files.push({ path: a.path, ok: false, problem });
      problems.push(problem);
    }
  }
  return { id: entry.id, storage: storage.name, ok: problems.length === 0, files, problems };
}

export async function runVerify(ctx: EngineContext, options: VerifyOptions): Promise<VerifyResult> {
  const sets: VerifyResult['sets'] = [];
  if (options.all) {
    for (const storage of ctx.storages) {
      const catalog = await readCatalog(ctx, storage);
      for (const entry of catalog) {
        if (entry.status === 'incomplete' && !entry.problem) continue;
        sets.push(await verifySet(ctx, storage, entry, options));
      }
    }
  } else {
    const { storage, entry } = await resolveSet(ctx, options.ref ?? 'latest');
    sets.push(await verifySet(ctx, storage, entry, options));
    for (const other of ctx.storages) {
      if (other === storage) continue;
      try {
        const found = (await readCatalog(ctx, other)).find((e) => e.id === entry.id);
        if (found) sets.push(await verifySet(ctx, other, found, options));
      } catch (error) {
        sets.push({ id: entry.id, storage: other.name, ok: false, files: [], problems: [ctx.redact((error as Error).message)] });
      }
    }
  }
  const ok = sets.every((s) => s.ok);
  await audit(ctx, ctx.storages, {
    action: 'verify',
    ...(sets.length === 1 ? { setId: sets[0]!.id } : {}),
    result: ok ? 'ok' : 'failed',
    ...(ok ? {} : { error: sets.flatMap((s) => s.problems.map((p) => `${s.id}: ${p}`)).slice(0, 20).join('; ') }),
    details: { sets: sets.length },
  });
  await ctx.notify({
    type: ok ? 'verify.succeeded' : 'verify.failed',
    outcome: ok ? 'success' : 'failure',
    ...(sets.length === 1 ? { setId: sets[0]!.id } : {}),
    details: sets.filter((s) => !s.ok).flatMap((s) => s.problems.map((p) => `${s.id} on ${s.storage}: ${p}`)),
    ...(ok ? {} : { error: { code: 'VERIFY_FAILED', message: `${sets.filter((s) => !s.ok).length} of ${sets.length} sets failed verification`, hint: 'Restore from a set that verifies; run another backup soon.' } }),
  });
  return { ok, sets };
}
