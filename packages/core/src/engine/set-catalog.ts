import type { Readable } from 'node:stream';
import type { Storage, StorageEntry } from '../interfaces/storage.js';
import type { Manifest } from '../manifest/manifest-schema.js';
import { MANIFEST_FILE } from '../manifest/manifest-schema.js';
import { MANIFEST_MAX_BYTES, parseManifest } from '../manifest/parse-manifest.js';
import { BackupError, ManifestError } from '../errors/backup-error.js';
import { timeFromSetId } from '../util/time-zone.js';
import type { BackupSetSummary } from './types.js';
import type { EngineContext } from './engine-context.js';
import { listingProblems } from './set-integrity.js';

export const STATE_DIR = '.scholaria-backup';

/** Set ids look like `<prefix>_<YYYYMMDD>_<HHMMSS>[-n]`: no separators, no dots. */
export const SET_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]*_\d{8}_\d{6}(-\d+)?$/;

export function assertSetId(id: string): void {
  if (!SET_ID_PATTERN.test(id)) {
    throw new BackupError('USAGE', `"${id}" is not a backup set id (expected "latest" or an id like scholaria_backup_20261126_020000)`, {
      hint: 'Run `scholaria-backup list` to see the sets that exist.',
    });
  }
}

export interface CatalogEntry extends BackupSetSummary {
  files: StorageEntry[];
}

/** Reads at most `max` bytes of a stream as UTF-8, or throws naming `where` (it stops reading). */
async function readCapped(stream: Readable, max: number, where: string): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    total += (chunk as Buffer).length;
    if (total > max) {
      stream.destroy();
      throw new ManifestError(`${where} is over the ${max}-byte limit for a manifest`, { hint: 'Treat this set as damaged: run `verify` and restore from another set.' });
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export async function readManifest(storage: Storage, setId: string, listedSize?: number): Promise<Manifest> {
  const where = `${storage.name} ${setId}/${MANIFEST_FILE}`;
  if (listedSize !== undefined && listedSize > MANIFEST_MAX_BYTES) {
    throw new ManifestError(`${where} is ${listedSize} bytes, over the ${MANIFEST_MAX_BYTES}-byte limit for a manifest`, { hint: 'Treat this set as damaged: run `verify` and restore from another set.' });
  }
  const body = await readCapped(await storage.get(`${setId}/${MANIFEST_FILE}`), MANIFEST_MAX_BYTES, where);
  const manifest = parseManifest(body, where);
  if (manifest.id !== setId) {
    throw new BackupError('MANIFEST_INVALID', `${where} names set ${manifest.id}, not ${setId}`, {
      hint: 'The set folder was renamed or its manifest copied from another set; treat it as damaged.',
    });
  }
  return manifest;
}

/** Reads every set on a storage from its files and manifests, newest first. */
export async function readCatalog(ctx: EngineContext, storage: Storage): Promise<CatalogEntry[]> {
  const entries = await storage.list('');
  const bySet = new Map<string, StorageEntry[]>();
  for (const entry of entries) {
    const slash = entry.key.indexOf('/');
    if (slash <= 0) continue;
    const top = entry.key.slice(0, slash);
    if (top === STATE_DIR || !top.startsWith(`${ctx.setPrefix}_`) || !SET_ID_PATTERN.test(top)) continue;
    const list = bySet.get(top) ?? [];
    list.push(entry);
    bySet.set(top, list);
  }
  const catalog: CatalogEntry[] = [];
  for (const [id, files] of bySet) {
    const hasManifest = files.some((f) => f.key === `${id}/${MANIFEST_FILE}`);
    const storedBytes = files.reduce((n, f) => n + f.size, 0);
    const newestFile = files.reduce((t, f) => Math.max(t, f.modifiedAt.getTime()), 0);
    const fallbackTime = timeFromSetId(id, ctx.timeZone) ?? new Date(newestFile);
    if (!hasManifest) {
      catalog.push({ id, status: 'incomplete', time: fallbackTime, bytes: storedBytes, components: [], storage: storage.name, files });
      continue;
    }
    try {
      const manifest = await readManifest(storage, id, files.find((f) => f.key === `${id}/${MANIFEST_FILE}`)?.size);
      const unlisted = listingProblems(id, manifest, files);
      if (unlisted.length > 0) {
        throw new BackupError('MANIFEST_INVALID', `set ${id} is damaged: ${unlisted.slice(0, 3).join('; ')}${unlisted.length > 3 ? ` (and ${unlisted.length - 3} more)` : ''}`, {
          hint: 'Nothing of it is read or restored; inspect the set folder (ls -l) and restore from another set.',
        });
      }
      catalog.push({
        id,
        status: manifest.status,
        tier: manifest.tier,
        time: new Date(manifest.startedAt),
        startedAt: manifest.startedAt,
        finishedAt: manifest.finishedAt,
        bytes: storedBytes,
        components: manifest.components.map((c) => ({ name: c.name, status: c.status })),
        storage: storage.name,
        manifest,
        files,
      });
    } catch (error) {
      catalog.push({
        id,
        status: 'incomplete',
        time: fallbackTime,
        bytes: storedBytes,
        components: [],
        storage: storage.name,
        problem: ctx.redact((error as Error).message),
        files,
      });
    }
  }
  catalog.sort((a, b) => b.time.getTime() - a.time.getTime() || b.id.localeCompare(a.id));
  return catalog;
}

/** The first storage that answers a listing, with its catalog. */
export async function readPrimaryCatalog(ctx: EngineContext): Promise<{ storage: Storage; catalog: CatalogEntry[] }> {
  let lastError: unknown;
  for (const storage of ctx.storages) {
    try {
      return { storage, catalog: await readCatalog(ctx, storage) };
    } catch (error) {
      lastError = error;
      ctx.logger.warn(`cannot list ${storage.name}: ${ctx.redact((error as Error).message)}`);
    }
  }
  throw new BackupError('STORAGE_FAILED', `no storage could be listed: ${ctx.redact((lastError as Error)?.message ?? 'unknown error')}`, {
    cause: lastError,
    retryable: true,
    hint: 'Check that the backup directory or bucket is reachable and readable (see `scholaria-backup health-check`).',
  });
}

/** Resolves 'latest' (newest complete set) or an id to a catalog entry with a manifest. */
export async function resolveSet(ctx: EngineContext, ref: string): Promise<{ storage: Storage; entry: CatalogEntry & { manifest: Manifest } }> {
  if (ref !== 'latest') assertSetId(ref);
  const errors: string[] = [];
  for (const storage of ctx.storages) {
    let catalog: CatalogEntry[];
    try {
      catalog = await readCatalog(ctx, storage);
    } catch (error) {
      errors.push(`${storage.name}: ${(error as Error).message}`);
      continue;
    }
    const entry =
      ref === 'latest' ? catalog.find((e) => e.status === 'complete' && e.manifest) : catalog.find((e) => e.id === ref);
    if (entry && entry.manifest) return { storage, entry: entry as CatalogEntry & { manifest: Manifest } };
    if (entry && !entry.manifest) {
      throw new BackupError('MANIFEST_INVALID', `set ${ref} on ${storage.name} is incomplete or damaged: ${entry.problem ?? 'it has no manifest.json (the backup did not finish)'}`, {
        hint: 'Choose another set (`scholaria-backup list`); `prune` removes incomplete sets.',
      });
    }
  }
  if (errors.length === ctx.storages.length) {
    throw new BackupError('STORAGE_FAILED', `no storage could be read: ${ctx.redact(errors.join('; '))}`, { retryable: true });
  }
  throw new BackupError(
    'SET_NOT_FOUND',
    ref === 'latest' ? 'there is no complete backup set yet' : `backup set ${ref} does not exist`,
    { hint: ref === 'latest' ? 'Run a backup first (`scholaria-backup backup`).' : 'Run `scholaria-backup list` to see the sets that exist.' },
  );
}
