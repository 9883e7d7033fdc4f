import { Readable } from 'node:stream';
import {
  BackupError,
  type BackupSource,
  type SourceBackupContext,
  type SourceBackupResult,
  type SourceCheckResult,
  type SourceRestoreContext,
  type SourceRestoreResult,
  type SourceVerifyContext,
  type SourceVerifyResult,
} from '@scholaria/backup-core';
import { parseRestoreOptions, parseSourceOptions, urlDatabase, type RedisSourceOptions, type ResolvedRedisSourceOptions } from './redis-options.js';
import { openClient, type OpenedClient } from './redis-connection.js';
import { parseInfo, serverFacts, type ServerFacts } from './server-info.js';
import { listDatabases, logicalDump, type LogicalDumpStats } from './logical-backup.js';
import { restoreDump, summarizeDump, type RestoreStats } from './logical-restore.js';
import { RespConnection } from './resp-connection.js';
import { ReplicationRefusedError, startRdbSnapshot, type RdbSession } from './rdb-snapshot.js';
import { rdbVersionForRedis } from './rdb-version.js';
import { COMPONENT, isCommandRefused, redisError } from './redis-errors.js';
import { assertEmpty, checkMemory, chooseScratch, discardStaging, memoryFacts, moveIn, planDestinations, swapIn } from './restore-staging.js';

/** Name of the logical artifact: a RESP stream of SELECT and RESTORE commands. */
export const LOGICAL_ARTIFACT = 'dump.resp';
/** Name of the rdb-mode artifact: the snapshot exactly as the server sent it. */
export const RDB_ARTIFACT = 'dump.rdb';
export const LOGICAL_CONTENT_TYPE = 'application/x-redis-resp';
export const RDB_CONTENT_TYPE = 'application/x-redis-rdb';

export const RDB_RESTORE_PROCEDURE = [
  '1. Stop the target redis-server.',
  '2. Undo the codecs (e.g. `age -d -i KEY | zstd -d`) after `sha256sum -c SHA256SUMS`, and copy the file over the server\'s snapshot: `<dir>/<dbfilename>` (see CONFIG GET dir and CONFIG GET dbfilename), owned by the redis user.',
  '3. AOF caveat: with `appendonly yes` Redis loads the AOF at start and ignores dump.rdb. Start once with `--appendonly no`, check the data, then run `CONFIG SET appendonly yes` so Redis writes a fresh AOF from the loaded data (and `CONFIG REWRITE` to keep the setting); remove or move away the old appendonlydir first.',
  '4. Start redis-server and compare DBSIZE of each database with the manifest\'s keyCounts.',
].join('\n');

function rdbRestoreError(): BackupError {
  return redisError(
    'RESTORE_FAILED',
    `the artifact ${RDB_ARTIFACT} is an RDB snapshot; a running Redis cannot load one through commands, so it cannot be restored in place`,
    `Restore it by replacing the server's snapshot file:\n${RDB_RESTORE_PROCEDURE}\nTo restore through this library, back up with mode "logical" (or "auto" on servers that refuse SYNC).`,
  );
}

function logicalRestoreHint(): string {
  return 'REDISCLI_AUTH=PASSWORD redis-cli -h HOST -p PORT --pipe  # adds to existing keys: FLUSHALL the target first for an exact copy';
}

/** Adds a sentence to a BackupError's message (what happened to the live data). */
function withNote(error: unknown, note: string): unknown {
  if (BackupError.isInstance(error)) {
    return new BackupError(error.code, `${error.message}; ${note}`, { ...(error.component ? { component: error.component } : {}), ...(error.hint ? { hint: error.hint } : {}), cause: error, retryable: error.retryable });
  }
  return error;
}

function numbersFrom(value: unknown): number[] {
  if (typeof value === 'number') return [value];
  if (Array.isArray(value)) return value.filter((v): v is number => typeof v === 'number');
  return [];
}

function keyCountsFrom(value: unknown): Record<string, number> | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(value)) if (/^\d+$/.test(k) && typeof v === 'number') out[k] = v;
  return out;
}

function formatCounts(counts: Record<string, number>): string {
  const entries = Object.entries(counts);
  return entries.length ? entries.map(([db, n]) => `db${db}: ${n}`).join(', ') : 'no databases';
}

async function facts(conn: OpenedClient): Promise<ServerFacts> {
  return serverFacts(parseInfo(await conn.client.info()));
}

function refuseCluster(f: ServerFacts, target: string): void {
  if (f.redisMode === 'cluster') {
    throw redisError('SOURCE_FAILED', `${target} runs in cluster mode, which this source does not back up`, 'Back up each shard master as its own component (one createRedisSource per node, with a distinct name).');
  }
}

export function createRedisSource(input: RedisSourceOptions): BackupSource {
  const options: ResolvedRedisSourceOptions = parseSourceOptions(input);
  const dataSettings = (target: string) => ({ connectTimeoutMs: options.connectTimeoutMs, idleTimeoutMs: options.idleTimeoutMs, target });

  async function backup(ctx: SourceBackupContext): Promise<SourceBackupResult> {
    const conn = await openClient(options);
    try {
      const f = await facts(conn);
      refuseCluster(f, conn.target);
      const warnings: string[] = [];
      const keyspace = Object.fromEntries([...f.keyspace].map(([db, s]) => [String(db), s.keys]));
      const base = {
        target: conn.target,
        serverVersion: f.serverVersion,
        redisMode: f.redisMode,
        role: f.role,
        usedMemory: f.usedMemory,
        requestedMode: options.mode,
      };

      let fallbackReason: string | undefined;
      if (options.mode !== 'logical') {
        let session: RdbSession | undefined;
        try {
          session = await startRdbSnapshot(conn.endpoint(), {
            connectTimeoutMs: options.connectTimeoutMs,
            idleTimeoutMs: options.idleTimeoutMs,
            signal: ctx.signal,
            target: conn.target,
          });
        } catch (error) {
          if (!(error instanceof ReplicationRefusedError)) throw error;
          if (options.mode === 'rdb') {
            throw redisError('SOURCE_FAILED', `${conn.target} refused to send an RDB snapshot: ${error.message}`, 'Grant the backup user SYNC/PSYNC and REPLCONF (ACL: +sync +psync +replconf), or use mode "auto" or "logical" (managed services usually refuse replication commands).', { cause: error });
          }
          fallbackReason = `rdb snapshot refused: ${error.message}`;
          warnings.push(`mode auto fell back to logical: ${fallbackReason}`);
          ctx.logger.warn('redis: rdb snapshot refused, falling back to logical mode', { target: conn.target, reason: error.message });
        }
        if (session) {
          ctx.logger.info('redis: streaming an RDB snapshot', { target: conn.target, transfer: session.info.transfer });
          try {
            await ctx.writeArtifact(RDB_ARTIFACT, Readable.from(session.payload(), { objectMode: false }), {
              compression: false,
              contentType: RDB_CONTENT_TYPE,
              restoreHint: 'cat > REDIS_DIR/dump.rdb  # with redis-server stopped; appendonly yes: see the @scholaria/backup-redis README',
              metadata: { transfer: session.info.transfer },
            });
          } finally {
            // The payload closes the connection when read to the end; this covers a sink that failed first.
            session.close();
          }
          const keys = Object.values(keyspace).reduce((a, b) => a + b, 0);
          return {
            metadata: {
              ...base,
              mode: 'rdb',
              format: 'rdb',
              rdbVersion: session.info.rdbVersion ?? null,
              rdbVersions: session.info.rdbVersion !== undefined ? [session.info.rdbVersion] : [],
              keyCounts: keyspace,
              keys,
              databases: Object.keys(keyspace).map(Number),
              transfer: session.info.transfer,
              syncCommand: session.info.command,
              rdbBytes: session.info.bytes,
              checksumVerified: session.info.checksumVerified,
            },
            warnings: [...warnings, 'keyCounts of an rdb-mode backup come from INFO keyspace just before the snapshot; keys written meanwhile may differ.'],
          };
        }
      }

      const dbs = options.databases
        ? { databases: [...options.databases], via: 'option' as const }
        : await listDatabases(conn.client);
      if (dbs.via === 'info') warnings.push('CONFIG GET databases was refused; backed up the databases INFO keyspace lists (plus db 0).');
      // PEXPIRETIME (7.0+) gives exact expiries; forks and older servers get TIME + PTTL.
      const useExpireTime = await conn.client.call('PEXPIRETIME', '__scholaria_backup_probe__').then(
        () => true,
        () => false,
      );
      const stats: LogicalDumpStats = { keyCounts: {}, keys: 0, vanished: 0, rdbVersions: new Set(), largestValueBytes: 0 };
      ctx.logger.info('redis: logical backup started', { target: conn.target, databases: dbs.databases.length });
      const data = await RespConnection.open(conn.endpoint(), dataSettings(conn.target));
      const body = Readable.from(
        logicalDump(data, { databases: dbs.databases, scanCount: options.scanCount, batchSize: options.batchSize, maxBatchBytes: options.maxBatchBytes, depth: options.pipelineDepth, useExpireTime, signal: ctx.signal }, stats),
        { objectMode: false },
      );
      try {
        await ctx.writeArtifact(LOGICAL_ARTIFACT, body, {
          contentType: LOGICAL_CONTENT_TYPE,
          restoreHint: logicalRestoreHint(),
          metadata: { format: 'resp-select-restore-absttl', databases: dbs.databases },
        });
      } finally {
        data.close();
      }
      const rdbVersions = [...stats.rdbVersions].sort((a, b) => a - b);
      if (stats.vanished) warnings.push(`${stats.vanished} key(s) expired or were deleted during the scan and are not in the backup.`);
      ctx.logger.info('redis: logical backup finished', { keys: stats.keys });
      return {
        metadata: {
          ...base,
          mode: 'logical',
          format: 'resp',
          ...(fallbackReason ? { fallbackReason } : {}),
          rdbVersion: rdbVersions.length ? rdbVersions[rdbVersions.length - 1]! : null,
          rdbVersions,
          keyCounts: stats.keyCounts,
          keys: stats.keys,
          databases: dbs.databases,
          databasesFrom: dbs.via,
          vanishedKeys: stats.vanished,
          largestValueBytes: stats.largestValueBytes,
        },
        warnings,
      };
    } finally {
      await conn.close();
    }
  }

  async function restore(ctx: SourceRestoreContext): Promise<SourceRestoreResult> {
    const ropts = parseRestoreOptions(ctx.options);
    const names = ctx.component.artifacts.map((a) => a.name);
    if (names.includes(RDB_ARTIFACT) || ctx.component.metadata.mode === 'rdb') throw rdbRestoreError();
    if (!names.includes(LOGICAL_ARTIFACT)) {
      throw redisError('RESTORE_FAILED', `the redis component of set ${ctx.setId} has no ${LOGICAL_ARTIFACT} artifact (found: ${names.join(', ') || 'none'})`, 'Pick a set whose redis component completed (scholaria-backup list), or restore the other components only.');
    }
    const mode = ropts.mode ?? options.restoreMode;
    // targetUrl: restore beside the live data, into another server (and database, when the URL names one).
    const targetOptions = ropts.targetUrl
      ? parseSourceOptions({ name: options.name, url: ropts.targetUrl, connectTimeoutMs: options.connectTimeoutMs, idleTimeoutMs: options.idleTimeoutMs })
      : options;
    const urlDb = ropts.targetUrl ? urlDatabase(ropts.targetUrl) : undefined;
    const targetDb = ropts.targetDb ?? (ropts.dbMap ? undefined : urlDb);
    const allOrNothing = ropts.allOrNothing ?? true;

    const conn = await openClient(targetOptions);
    try {
      const f = await facts(conn);
      refuseCluster(f, conn.target);
      const detected = rdbVersionForRedis(f.serverVersion);
      const targetRdb = ropts.targetRdbVersion ?? detected?.rdbVersion;
      const warnings: string[] = [];
      if (ropts.targetRdbVersion === undefined && detected?.assumed) {
        warnings.push(`Redis ${f.serverVersion} is newer than the version table; assuming it reads RDB ${detected.rdbVersion} or older.`);
      }
      let maxDatabases: number | undefined;
      try {
        const reply = (await conn.client.config('GET', 'databases')) as string[];
        maxDatabases = Number(reply[1]) || undefined;
      } catch (error) {
        if (!isCommandRefused(error) && !/ERR/.test(String(error))) throw error;
      }
      const targetLine = `target ${conn.target}: Redis ${f.serverVersion}, reads RDB <= ${targetRdb ?? 'unknown'}${ropts.targetRdbVersion !== undefined ? ' (set by targetRdbVersion)' : ''}`;

      const tooNew = (versions: number[]) => (targetRdb === undefined ? [] : versions.filter((v) => v > targetRdb));
      // The databases option of the restore, else those of the source (a URL ending in /N means N only).
      const wanted = ropts.databases ?? options.databases;
      const selectedDbs = (dbs: number[]) => (wanted ? dbs.filter((d) => wanted.includes(d)) : dbs);
      // targetDb takes the one database of the dump that holds keys (a dump lists empty ones too).
      const withKeys = (dbs: number[], counts: Record<string, number>) => {
        const full = dbs.filter((d) => (counts[String(d)] ?? 1) > 0);
        return full.length ? full : dbs.slice(0, 1);
      };

      if (ctx.dryRun) {
        const summary = await summarizeDump(await ctx.open(LOGICAL_ARTIFACT), LOGICAL_ARTIFACT, ctx.signal);
        const dbs = selectedDbs(summary.databases);
        const counts = Object.fromEntries(dbs.map((d) => [String(d), summary.keyCounts[String(d)] ?? 0]));
        const dests = planDestinations(targetDb !== undefined ? withKeys(dbs, summary.keyCounts) : dbs, { targetDb, dbMap: ropts.dbMap });
        const moved = [...dests].filter(([from, to]) => from !== to);
        const newer = tooNew(summary.rdbVersions);
        const plan = [
          targetLine,
          `dump: ${summary.keys} keys (${formatCounts(summary.keyCounts)}), DUMP payloads in RDB version ${summary.rdbVersions.join(', ') || 'none'}`,
          mode === 'flush'
            ? `would FLUSHDB database(s) ${dbs.join(', ') || 'none'}, then RESTORE ${Object.values(counts).reduce((a, b) => a + b, 0)} keys (${formatCounts(counts)})`
            : `would RESTORE ${Object.values(counts).reduce((a, b) => a + b, 0)} keys (${formatCounts(counts)}) over the existing data (merge: keys not in the dump stay, keys in it are replaced)`,
          ...(moved.length ? [`database mapping: ${moved.map(([from, to]) => `dump db${from} -> db${to}`).join(', ')}`] : []),
          allOrNothing
            ? 'all-or-nothing: keys are staged in an empty scratch database and swapped in only when all were accepted'
            : 'allOrNothing: false: keys go straight into the live database(s); a failure leaves them half-filled',
        ];
        if (newer.length) {
          const msg = `the dump's RDB version ${Math.max(...newer)} is newer than the target supports (${targetRdb}): RESTORE would reject it; restore into a Redis at least as new as ${String(ctx.component.metadata.serverVersion ?? 'the one backed up')}`;
          plan.push(`PROBLEM: ${msg}`);
          warnings.push(msg);
        } else if (targetRdb !== undefined) {
          plan.push(`RDB versions compatible: dump <= ${Math.max(0, ...summary.rdbVersions)}, target reads <= ${targetRdb}`);
        }
        const outOfRange = maxDatabases === undefined ? [] : dbs.filter((d) => d >= maxDatabases!);
        if (outOfRange.length) {
          const msg = `the target has ${maxDatabases} databases; the dump uses database(s) ${outOfRange.join(', ')}: raise \`databases\` on the target or restore only some with the databases option`;
          plan.push(`PROBLEM: ${msg}`);
          warnings.push(msg);
        }
        if (summary.badChecksums) {
          const msg = `${summary.badChecksums} DUMP payload(s) fail their CRC-64: the artifact is damaged`;
          plan.push(`PROBLEM: ${msg}`);
          warnings.push(msg);
        }
        return {
          plan,
          warnings,
          metadata: {
            dryRun: true,
            mode,
            keyCounts: counts,
            keys: summary.keys,
            dumpRdbVersions: summary.rdbVersions,
            targetVersion: f.serverVersion,
            targetRdbVersion: targetRdb ?? null,
            rdbVersionTooNew: newer.length > 0,
            badChecksums: summary.badChecksums,
          },
        };
      }

      // Know the dump's RDB version and databases before anything is flushed: from the
      // manifest when it has them, otherwise by reading the artifact once.
      let dumpVersions = numbersFrom(ctx.component.metadata.rdbVersions ?? ctx.component.metadata.rdbVersion);
      let dumpDbs = numbersFrom(ctx.component.metadata.databases);
      let dumpCounts = keyCountsFrom(ctx.component.metadata.keyCounts);
      if (!dumpVersions.length || !dumpDbs.length || !dumpCounts) {
        const summary = await summarizeDump(await ctx.open(LOGICAL_ARTIFACT), LOGICAL_ARTIFACT, ctx.signal);
        dumpVersions = summary.rdbVersions;
        dumpDbs = summary.databases;
        dumpCounts = summary.keyCounts;
      }
      const newer = tooNew(dumpVersions);
      if (newer.length) {
        throw new BackupError(
          'UNSUPPORTED_VERSION',
          `redis: the dump's RDB version ${Math.max(...newer)} is newer than ${conn.target} (Redis ${f.serverVersion}) supports (${targetRdb}); nothing was changed`,
          {
            component: COMPONENT,
            hint: 'Restore into a Redis at least as new as the one backed up, or upgrade the target first. A dry-run shows the versions.',
          },
        );
      }
      const selected = selectedDbs(dumpDbs);
      const destinations = planDestinations(targetDb !== undefined ? withKeys(selected, dumpCounts) : selected, { targetDb, dbMap: ropts.dbMap });
      const targets = [...destinations.values()];
      // Only databases with keys are staged; an empty one of the dump is flushed (flush mode) with the swap.
      const hasKeys = (from: number) => (dumpCounts![String(from)] ?? 1) > 0;
      const stagedTargets = [...destinations].filter(([from]) => hasKeys(from)).map(([, to]) => to);
      const emptyTargets = [...destinations].filter(([from]) => !hasKeys(from)).map(([, to]) => to);
      const outOfRange = maxDatabases === undefined ? [] : targets.filter((d) => d >= maxDatabases!);
      if (outOfRange.length) {
        throw redisError('RESTORE_FAILED', `the target has ${maxDatabases} databases but the restore writes database(s) ${outOfRange.join(', ')}; nothing was changed`, 'Raise `databases` in the target\'s redis.conf, or pass the databases restore option to restore only some.');
      }

      // Preflight: the keys must fit beside the live data (staged) or at all (straight).
      const mem = await memoryFacts(conn.client);
      if (mem.maxMemory > 0) {
        const summary = await summarizeDump(await ctx.open(LOGICAL_ARTIFACT), LOGICAL_ARTIFACT, ctx.signal);
        const payload = selected.reduce((sum, d) => sum + (summary.payloadBytes[String(d)] ?? 0), 0);
        checkMemory(mem, payload, allOrNothing, conn.target);
        if (allOrNothing && mem.policy !== 'noeviction') {
          warnings.push(`maxmemory-policy is ${mem.policy}: if memory runs short while the keys are staged, Redis evicts keys instead of refusing them`);
        }
      }
      const scratch = allOrNothing ? chooseScratch(stagedTargets, stagedTargets, f, maxDatabases, ropts.scratchDbs, conn.target) : [];
      const scratchOf = new Map(stagedTargets.map((t, i) => [t, scratch[i]!]));
      if (allOrNothing) await assertEmpty(conn.client, scratch, conn.target, mode);

      const stats: RestoreStats = { keyCounts: {}, flushed: [], keys: 0 };
      ctx.logger.info('redis: restore started', { target: conn.target, mode, allOrNothing, ...(allOrNothing ? { scratch } : {}) });
      const flushAsync = (rdbVersionForRedis(f.serverVersion)?.rdbVersion ?? 0) >= 8;
      const data = await RespConnection.open(conn.endpoint(), dataSettings(conn.target));
      try {
        await restoreDump(
          data,
          await ctx.open(LOGICAL_ARTIFACT),
          LOGICAL_ARTIFACT,
          {
            // Staging writes into empty scratch databases: nothing to flush there.
            mode: allOrNothing ? 'merge' : mode,
            destination: (db) => {
              const to = destinations.get(db);
              if (to === undefined) return undefined;
              return allOrNothing ? (scratchOf.get(to) ?? null) : to;
            },
            batchSize: ropts.batchSize ?? options.batchSize,
            maxBatchBytes: options.maxBatchBytes,
            flushAsync,
            signal: ctx.signal,
          },
          stats,
        );
      } catch (error) {
        if (allOrNothing) {
          await discardStaging(conn.client, scratch).catch((e: unknown) => ctx.logger.warn(`redis: could not empty the scratch database(s) ${scratch.join(', ')}: ${(e as Error).message}`));
          throw withNote(error, `the live data was not changed (the keys were staged in scratch database(s) ${scratch.join(', ')}, now emptied)`);
        }
        throw error;
      } finally {
        data.close();
      }
      if (allOrNothing) {
        const pairs = stagedTargets.map((t) => [t, scratchOf.get(t)!] as [number, number]);
        if (mode === 'flush') {
          await swapIn(conn.client, pairs, emptyTargets, flushAsync);
          stats.flushed = targets;
        } else {
          await moveIn(conn.client, pairs, options.scanCount);
        }
      }
      ctx.logger.info('redis: restore finished', { keys: stats.keys });
      return {
        plan: [
          targetLine,
          ...(mode === 'flush' ? [`${allOrNothing ? 'replaced' : 'flushed'} database(s) ${stats.flushed.join(', ') || 'none'}`] : ['merged into the existing data']),
          ...(allOrNothing ? [`staged in scratch database(s) ${scratch.join(', ')}, then ${mode === 'flush' ? 'swapped in (SWAPDB)' : 'moved over'}`] : []),
          `restored ${stats.keys} keys (${formatCounts(stats.keyCounts)})`,
        ],
        warnings,
        metadata: {
          mode,
          keyCounts: stats.keyCounts,
          keys: stats.keys,
          flushed: stats.flushed,
          targetVersion: f.serverVersion,
          allOrNothing,
          databaseMap: Object.fromEntries([...destinations].map(([from, to]) => [String(from), to])),
          ...(ropts.targetUrl ? { target: conn.target } : {}),
        },
      };
    } finally {
      await conn.close();
    }
  }

  async function check(): Promise<SourceCheckResult> {
    let conn: OpenedClient;
    try {
      conn = await openClient(options);
    } catch (error) {
      const e = error as BackupError;
      return { ok: false, problems: [`${e.message}${e.hint ? ` (${e.hint})` : ''}`], details: { mode: options.mode } };
    }
    try {
      const f = await facts(conn);
      const problems: string[] = [];
      const warnings: string[] = [];
      if (f.redisMode === 'cluster') problems.push(`${conn.target} runs in cluster mode, which this source does not back up; back up each shard master separately.`);
      if (options.mode !== 'logical') {
        // ACL DRYRUN (7.0+) answers whether SYNC would be allowed without starting one.
        try {
          const user = String(await conn.client.call('ACL', 'WHOAMI'));
          const answer = String(await conn.client.call('ACL', 'DRYRUN', user, 'SYNC'));
          if (answer !== 'OK') {
            const msg = `the backup user may not run SYNC (${answer})`;
            if (options.mode === 'rdb') problems.push(`${msg}; grant +sync +psync +replconf or use mode "auto"`);
            else warnings.push(`${msg}; mode auto will fall back to logical`);
          }
        } catch {
          warnings.push('could not tell whether SYNC is allowed (ACL DRYRUN unavailable); it is known at backup time');
        }
      }
      return {
        ok: problems.length === 0,
        details: {
          target: conn.target,
          serverVersion: f.serverVersion,
          redisMode: f.redisMode,
          role: f.role,
          usedMemory: f.usedMemory,
          mode: options.mode,
          keyCounts: Object.fromEntries([...f.keyspace].map(([db, s]) => [String(db), s.keys])),
        },
        problems,
        warnings,
      };
    } catch (error) {
      return { ok: false, problems: [`redis: check of ${conn.target} failed: ${(error as Error).message}`] };
    } finally {
      await conn.close();
    }
  }

  async function verify(ctx: SourceVerifyContext): Promise<SourceVerifyResult> {
    const expected = keyCountsFrom(ctx.component.metadata.keyCounts);
    if (!expected) return { ok: false, mismatches: ['the manifest has no keyCounts for the redis component'] };
    const conn = await openClient(options);
    try {
      const mismatches: string[] = [];
      const dbs = Object.keys(expected).map(Number);
      const p = conn.client.pipeline();
      for (const db of dbs) {
        p.select(db);
        p.dbsize();
      }
      const results = (await p.exec()) ?? [];
      dbs.forEach((db, i) => {
        const [selErr] = results[i * 2] ?? [];
        const [sizeErr, size] = results[i * 2 + 1] ?? [];
        const want = expected[String(db)]!;
        if (selErr || sizeErr) mismatches.push(`db${db}: cannot count keys (${(selErr ?? sizeErr)!.message})`);
        else if (Number(size) !== want) mismatches.push(`db${db}: ${Number(size)} keys live, ${want} in the backup`);
      });
      return { ok: mismatches.length === 0, mismatches };
    } finally {
      await conn.close();
    }
  }

  return {
    specVersion: 'v1',
    name: options.name,
    backup,
    restore,
    check,
    verify,
  };
}
