import { createInterface } from 'node:readline';
import { BackupError, type Manifest, type RestoreResult } from '@scholaria/backup-core';
import type { CliIo } from '../cli-io.js';
import { EXIT } from '../exit-codes.js';
import { progressMode, withRuntime, type CommandContext } from '../command-context.js';
import type { CliRuntime } from '../runtime.js';
import { createProgress } from '../progress.js';
import { errorJson, formatBytes, formatDuration, formatTime } from '../format.js';

export interface RestoreCommandOptions {
  component: string[];
  dryRun: boolean;
  yes: boolean;
  mode?: string;
  targetDatabase?: string;
  /** Redis: another server (and database, by its path) to restore into. */
  targetRedisUrl?: string;
  /** Redis: the database index to restore into. */
  targetRedisDb?: number;
  /** Qdrant: NEW (the set's only collection) or ORIGINAL=NEW entries. */
  targetCollection?: string[];
  /** Qdrant: restore every collection as <name><suffix>. */
  targetCollectionSuffix?: string;
}

/** `--target-collection` values as Qdrant's restoreAs map (original -> target). */
function restoreAsMap(values: string[], manifest: Manifest): Record<string, string> {
  const recorded = ((manifest.components.find((c) => c.name === 'qdrant')?.metadata as { collections?: { name: string }[] } | undefined)?.collections ?? []).map((c) => c.name);
  const map: Record<string, string> = {};
  for (const value of values) {
    const eq = value.indexOf('=');
    if (eq > 0) {
      const from = value.slice(0, eq).trim();
      const to = value.slice(eq + 1).trim();
      if (!recorded.includes(from)) {
        throw new BackupError('USAGE', `--target-collection ${value}: set ${manifest.id} has no Qdrant collection "${from}" (it has: ${recorded.join(', ') || 'none'})`, {
          hint: 'Name a collection of the set (`scholaria-backup show SET` lists them) before the "=".',
        });
      }
      if (to === '') throw new BackupError('USAGE', `--target-collection ${value}: the new name after "=" is empty`);
      map[from] = to;
    } else {
      if (recorded.length !== 1) {
        throw new BackupError('USAGE', `--target-collection ${value}: set ${manifest.id} holds ${recorded.length} Qdrant collections (${recorded.join(', ') || 'none'}), so say which: ORIGINAL=${value}`, {
          hint: 'Use --target-collection ORIGINAL=NEW per collection, or --target-collection-suffix _restored for all.',
        });
      }
      map[recorded[0]!] = value.trim();
    }
  }
  return map;
}

function urlSecrets(url: string | undefined): string[] {
  if (!url) return [];
  try {
    const parsed = new URL(url);
    return [url, decodeURIComponent(parsed.password), parsed.password].filter((s) => s !== '');
  } catch {
    return [url];
  }
}

export function restoreJson(result: RestoreResult) {
  return {
    setId: result.setId,
    dryRun: result.dryRun,
    status: result.status,
    durationMs: result.durationMs,
    verified: result.verified,
    components: result.components.map((c) => ({
      name: c.name,
      status: c.status,
      plan: c.plan,
      warnings: c.warnings,
      durationMs: c.durationMs,
      error: errorJson(c.error),
    })),
  };
}

/** The components a restore would touch; the same rules as the engine, checked before asking. */
function chooseComponents(rt: CliRuntime, manifest: Manifest, requested: string[]): string[] {
  const configured = new Set(rt.sources.map((s) => s.name));
  const inSet = manifest.components.map((c) => c.name);
  if (requested.length === 0) {
    return manifest.components.filter((c) => c.status === 'ok' && configured.has(c.name)).map((c) => c.name);
  }
  const problems: string[] = [];
  for (const name of requested) {
    const component = manifest.components.find((c) => c.name === name);
    if (!component) problems.push(`set ${manifest.id} has no component "${name}" (it has: ${inSet.join(', ') || 'none'})`);
    else if (component.status !== 'ok') problems.push(`component "${name}" failed in set ${manifest.id}, so it cannot be restored from it`);
    else if (!configured.has(name)) problems.push(`no source is configured for component "${name}" (configured: ${[...configured].join(', ') || 'none'})`);
  }
  if (problems.length > 0) {
    throw new BackupError('COMPONENT_UNKNOWN', problems.join('; '), {
      hint: 'Choose components that the set contains and the configuration defines (`scholaria-backup list` shows each set\'s components).',
    });
  }
  return requested;
}

/** One line from stdin; '' when stdin closes first. */
export async function ask(io: CliIo, question: string, signal: AbortSignal): Promise<string> {
  io.stderr.write(question);
  const rl = createInterface({ input: io.stdin, terminal: false });
  try {
    return await new Promise<string>((resolve) => {
      const done = (answer: string) => resolve(answer);
      rl.once('line', done);
      rl.once('close', () => done(''));
      signal.addEventListener('abort', () => done(''), { once: true });
    });
  } finally {
    rl.close();
  }
}

export interface KeptDatabasesSource {
  name: string;
  keptDatabases(): Promise<{ name: string; of: string; bytes: number }[]>;
  dropKeptDatabase(name: string): Promise<void>;
}

const hasKept = (s: unknown): s is KeptDatabasesSource =>
  typeof (s as KeptDatabasesSource).keptDatabases === 'function' && typeof (s as KeptDatabasesSource).dropKeptDatabase === 'function';

/** The `<db>_before_<time>` databases swap restores kept, per source that can list them. */
export async function findKeptDatabases(sources: readonly unknown[]): Promise<{ source: KeptDatabasesSource; db: { name: string; of: string; bytes: number } }[]> {
  const found: { source: KeptDatabasesSource; db: { name: string; of: string; bytes: number } }[] = [];
  for (const candidate of sources) {
    if (!hasKept(candidate)) continue;
    for (const db of await candidate.keptDatabases()) found.push({ source: candidate, db });
  }
  return found;
}

/** `restore cleanup`: drops the `<db>_before_<time>` databases swap restores kept, after confirmation. */
export async function restoreCleanupCommand(ctx: CommandContext, options: { yes: boolean; dryRun: boolean }): Promise<number> {
  return await withRuntime(ctx, options.dryRun ? undefined : 'restore', async ({ rt, fileLog }) => {
    const { out } = ctx;
    const found = await findKeptDatabases(rt.sources as unknown[]);
    if (ctx.json && (options.dryRun || found.length === 0)) {
      out.document({ dryRun: options.dryRun, kept: found.map((f) => ({ component: f.source.name, ...f.db })), dropped: [] });
      return EXIT.OK;
    }
    if (found.length === 0) {
      out.line('no databases kept by swap restores');
      return EXIT.OK;
    }
    if (!ctx.json) for (const f of found) out.line(`kept: ${f.db.name} (${f.source.name}, was "${f.db.of}", ${formatBytes(f.db.bytes)})`);
    if (options.dryRun) return EXIT.OK;
    if (!options.yes) {
      if (!ctx.io.isTTY) {
        throw new BackupError('USAGE', `refusing to drop ${found.length} kept database(s) without confirmation: this is not an interactive terminal`, {
          hint: 'Pass --yes to drop them, or --dry-run to only list them.',
        });
      }
      const answer = (await ask(ctx.io, `Drop ${found.length} database(s)? This cannot be undone. Type "yes" to continue: `, ctx.signal)).trim().toLowerCase();
      if (answer !== 'yes') {
        out.note('cleanup cancelled: nothing was dropped');
        return EXIT.FAILURE;
      }
    }
    for (const f of found) {
      await f.source.dropKeptDatabase(f.db.name);
      fileLog.info(`dropped the kept database ${f.db.name}`, { component: f.source.name, database: f.db.name, bytes: f.db.bytes });
    }
    if (ctx.json) out.document({ dryRun: false, kept: [], dropped: found.map((f) => ({ component: f.source.name, ...f.db })) });
    else out.line(`dropped ${found.length} database(s), ${formatBytes(found.reduce((n, f) => n + f.db.bytes, 0))}`);
    return EXIT.OK;
  });
}

export async function restoreCommand(ctx: CommandContext, ref: string, options: RestoreCommandOptions): Promise<number> {
  if (ref === 'cleanup') return await restoreCleanupCommand(ctx, { yes: options.yes, dryRun: options.dryRun });
  if (options.targetDatabase !== undefined && options.mode !== undefined && options.mode !== 'new-database') {
    throw new BackupError('USAGE', `--target-database goes with --mode new-database, not --mode ${options.mode}`, {
      hint: 'Use --mode new-database --target-database NAME to restore PostgreSQL beside the live database.',
    });
  }
  return await withRuntime(ctx, 'restore', async ({ rt }) => {
    const { out } = ctx;
    const manifest = await rt.engine.readManifest(ref, options.component.length > 0 ? { components: options.component } : {});
    const components = chooseComponents(rt, manifest, options.component);
    if (ref === 'latest' && options.component.length > 0 && !ctx.json) {
      // Say which set "latest" became, and why newer ones were passed over.
      const newer = (await rt.engine.list()).filter((s) => s.time.getTime() > new Date(manifest.startedAt).getTime() && s.id !== manifest.id);
      out.note(
        `latest with ${options.component.join(', ')}: ${manifest.id}, the newest set in which ${options.component.join(' and ')} ${options.component.length > 1 ? 'were' : 'was'} backed up successfully` +
          (newer.length > 0 ? ` (passed over, newer but without it: ${newer.map((s) => `${s.id} [${s.components.map((c) => c.name).join(', ') || 'no components'}]`).join(', ')})` : ''),
      );
    }
    const wantsPgOptions = options.mode !== undefined || options.targetDatabase !== undefined;
    if (wantsPgOptions && !components.includes('postgres')) {
      throw new BackupError('USAGE', '--mode and --target-database apply to the postgres component, which this restore does not include', {
        hint: 'Add --component postgres, or leave these options out.',
      });
    }
    const wantsRedisOptions = options.targetRedisUrl !== undefined || options.targetRedisDb !== undefined;
    if (wantsRedisOptions && !components.includes('redis')) {
      throw new BackupError('USAGE', '--target-redis-url and --target-redis-db apply to the redis component, which this restore does not include', {
        hint: 'Add --component redis, or leave these options out.',
      });
    }
    if (options.targetRedisUrl !== undefined && !/^rediss?:\/\//.test(options.targetRedisUrl)) {
      throw new BackupError('USAGE', '--target-redis-url must be a redis:// or rediss:// URL', {
        hint: 'For example --target-redis-url redis://:PASSWORD@127.0.0.1:6380/0',
      });
    }
    const wantsQdrantOptions = (options.targetCollection?.length ?? 0) > 0 || options.targetCollectionSuffix !== undefined;
    if (wantsQdrantOptions && !components.includes('qdrant')) {
      throw new BackupError('USAGE', '--target-collection and --target-collection-suffix apply to the qdrant component, which this restore does not include', {
        hint: 'Add --component qdrant, or leave these options out.',
      });
    }
    const componentOptions: Record<string, Record<string, unknown>> = {};
    if (wantsQdrantOptions) {
      const restoreAs = restoreAsMap(options.targetCollection ?? [], manifest);
      componentOptions.qdrant = {
        ...(Object.keys(restoreAs).length > 0 ? { restoreAs } : {}),
        ...(options.targetCollectionSuffix !== undefined ? { collectionSuffix: options.targetCollectionSuffix } : {}),
      };
    }
    if (wantsPgOptions) {
      componentOptions.postgres = {
        ...(options.mode ? { mode: options.mode } : {}),
        ...(options.targetDatabase ? { targetDatabase: options.targetDatabase, ...(options.mode ? {} : { mode: 'new-database' }) } : {}),
      };
    }
    if (wantsRedisOptions) {
      componentOptions.redis = {
        ...(options.targetRedisUrl !== undefined ? { targetUrl: options.targetRedisUrl } : {}),
        ...(options.targetRedisDb !== undefined ? { targetDb: options.targetRedisDb } : {}),
      };
    }
    const plan = `restore ${manifest.id} (${manifest.tier}, started ${formatTime(manifest.startedAt, rt.timeZone)}): ${components.join(', ') || 'nothing'}`;
    if (!options.dryRun) {
      if (!options.yes) {
        if (!ctx.io.isTTY) {
          throw new BackupError('USAGE', `refusing to restore ${manifest.id} over live data without confirmation: this is not an interactive terminal`, {
            hint: 'Pass --yes to confirm, or --dry-run to check the set without touching anything.',
          });
        }
        out.note(`${plan}`);
        out.note(`This overwrites the live data of: ${components.join(', ')}.`);
        const answer = (await ask(ctx.io, `Type the set id (${manifest.id}) or "yes" to continue: `, ctx.signal)).trim();
        if (answer !== manifest.id && answer.toLowerCase() !== 'yes') {
          out.note('restore cancelled: nothing was changed');
          return EXIT.FAILURE;
        }
      }
    }
    if (!ctx.json) out.note(`${options.dryRun ? '[dry run] ' : ''}${plan}`);

    const expected = new Map<string, number>();
    for (const c of manifest.components) expected.set(c.name, c.artifacts.reduce((n, a) => n + a.size, 0));
    const progress = createProgress(out, { ...progressMode(ctx), expected, noDoneLines: ['restore'] });
    let result: RestoreResult;
    try {
      result = await rt.engine.restore({
        ref: manifest.id,
        components,
        dryRun: options.dryRun,
        signal: ctx.signal,
        onProgress: (e) => progress.onProgress(e),
        ...(Object.keys(componentOptions).length > 0 ? { componentOptions } : {}),
      });
    } finally {
      progress.stop();
    }
    if (ctx.json) {
      out.document(restoreJson(result));
    } else {
      const verifiedOk = result.verified.filter((v) => v.ok).length;
      out.line(`verification: ${verifiedOk}/${result.verified.length} artifacts match their SHA-256${verifiedOk === result.verified.length ? '' : ' — nothing was restored'}`);
      for (const v of result.verified.filter((x) => !x.ok)) out.line(`  FAILED ${v.path}: ${v.error ?? 'mismatch'}`);
      for (const c of result.components) {
        out.line(`${c.name}: ${c.status}${c.durationMs ? ` in ${formatDuration(c.durationMs)}` : ''}`);
        for (const step of c.plan) out.line(`  - ${step}`);
        for (const w of c.warnings) out.line(`  warning: ${w}`);
        if (c.error) out.line(`  error: ${c.error.message}`);
      }
      const total = manifest.components.filter((c) => components.includes(c.name)).reduce((n, c) => n + c.artifacts.reduce((m, a) => m + a.size, 0), 0);
      out.line(
        `restore of ${result.setId}${result.dryRun ? ' (dry run: nothing was written)' : ''}: ${result.status.toUpperCase()}, ${formatBytes(total)} in ${formatDuration(result.durationMs)}`,
      );
      const firstError = result.components.find((c) => c.error)?.error as BackupError | undefined;
      if (firstError?.hint) out.note(`hint: ${firstError.hint}`);
    }
    return result.status === 'ok' ? EXIT.OK : EXIT.FAILURE;
  }, { extraSecrets: urlSecrets(options.targetRedisUrl), skipComponentErrors: true });
}
