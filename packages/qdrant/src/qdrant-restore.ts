/**
 * The `restore` operation: options and targets checked, a preflight against the server (token,
 * version, aliases, compatible existing collections) that a dry run reports as its plan, then
 * each collection snapshot uploaded (cluster-captured ones shard by shard) and aliases moved.
 */
import { randomBytes } from 'node:crypto';
import { BackupError, type ArtifactRecord, type SourceRestoreContext, type SourceRestoreResult } from '@scholaria/backup-core';
import { restoreOptionsSchema, validateCollectionName } from './qdrant-options.js';
import { enc, type AliasOperation, type CallOptions, type ClusterInfo, type QdrantApi } from './qdrant-api.js';
import { snapshotCompatibility, supportsSnapshotChecksum } from './qdrant-version.js';
import { describeTokenAccess, jwtAccess } from './qdrant-token.js';
import { mapShards, peerDirectory, shardLabel, shardsOf, type PeerDirectory } from './qdrant-cluster.js';
import { restoreShards } from './qdrant-cluster-restore.js';
import { countMatches, describeVectors, expectedCount, parseRecorded, quoteList, stableJson } from './qdrant-recorded.js';
import type { SourceCore } from './qdrant-source-core.js';

/**
 * Deletes the copy of an uploaded snapshot that Qdrant keeps (qdrant/qdrant#10207). Returns a
 * warning when it stays on the server. A failed upload may have left nothing (a checksum
 * mismatch is refused before the file is kept), so NOT_FOUND is then expected.
 */
async function removeUploadedSnapshot(
  a: QdrantApi,
  target: string,
  name: string,
  uploaded: boolean,
  ctx: SourceRestoreContext,
): Promise<string | undefined> {
  try {
    await a.deleteSnapshot(target, name, { logger: ctx.logger, failCode: 'RESTORE_FAILED' });
    return undefined;
  } catch (error) {
    const e = a.translate(error, `deleting the uploaded snapshot "${name}"`, 'RESTORE_FAILED');
    if (e.code === 'NOT_FOUND' && !uploaded) return undefined;
    const text = `could not delete the uploaded snapshot "${name}" of "${target}" that Qdrant keeps after a restore (${e.message}); delete it by hand to free the disk: curl -X DELETE "$QDRANT_URL/collections/${enc(target)}/snapshots/${enc(name)}" -H "api-key: $QDRANT_API_KEY"`;
    ctx.logger.warn(text);
    return text;
  }
}

export async function restoreQdrant(core: SourceCore, ctx: SourceRestoreContext): Promise<SourceRestoreResult> {
  const { component, opts } = core;
  const a = core.getApi();
  const call: CallOptions = { signal: ctx.signal, logger: ctx.logger, failCode: 'RESTORE_FAILED' };
  const recorded = parseRecorded(ctx.component.metadata, core.component);
  const parsedOptions = restoreOptionsSchema.safeParse(ctx.options ?? {});
  if (!parsedOptions.success) {
    throw new BackupError(
      'USAGE',
      `${component}: invalid restore options: ${parsedOptions.error.issues.map((i) => `${i.path.join('.') || '(options)'}: ${i.message}`).join('; ')}`,
      {
        component,
        hint: "componentOptions.qdrant accepts { restoreAs? / targetCollections?: { original: target }, collectionSuffix?: string, aliasTargets?: 'refuse' | 'resolve', collections?: string[], aliases?: boolean }.",
      },
    );
  }
  const ropts = parsedOptions.data;
  for (const [from, to] of Object.entries(ropts.targetCollections ?? {})) {
    const other = ropts.restoreAs?.[from];
    if (other !== undefined && other !== to) {
      throw new BackupError('USAGE', `${component}: restoreAs and targetCollections give "${from}" two targets ("${other}" and "${to}")`, {
        component,
        hint: 'Pass one map (targetCollections and restoreAs are the same option).',
      });
    }
  }
  const targetMap = ropts.targetCollections || ropts.restoreAs ? { ...ropts.targetCollections, ...ropts.restoreAs } : undefined;
  const recordedNames = recorded.collections.map((c) => c.name);
  if (ropts.collections) {
    const unknown = ropts.collections.filter((c) => !recordedNames.includes(c));
    if (unknown.length) {
      throw new BackupError('USAGE', `${component}: ${quoteList(unknown)} ${unknown.length > 1 ? 'are' : 'is'} not in this backup set`, {
        component,
        hint: recordedNames.length ? `The set holds ${quoteList(recordedNames)}.` : 'The set holds no Qdrant collections.',
      });
    }
  }
  const chosen = recorded.collections.filter((c) => !ropts.collections || ropts.collections.includes(c.name));
  const items = chosen.map((c) => {
    const target = core.restoreTarget(c.name, targetMap, ropts.collectionSuffix);
    const invalid = validateCollectionName(target);
    if (invalid) {
      throw new BackupError('USAGE', `${component}: restore target "${target}" for "${c.name}" ${invalid}`, {
        component,
        hint: 'Fix restoreAs or collectionSuffix.',
      });
    }
    const findArtifact = (name: string, what: string): ArtifactRecord => {
      const found = ctx.component.artifacts.find((x) => x.name === name);
      if (!found) {
        throw new BackupError('MANIFEST_INVALID', `${component}: the manifest lists ${what} of collection "${c.name}" but no artifact "${name}"`, {
          component,
          hint: 'The set is incomplete for this collection; restore it from another set.',
        });
      }
      return found;
    };
    const shards = c.shards?.map((sh) => {
      const art = findArtifact(sh.artifact, shardLabel(sh));
      return { recorded: sh, artifact: art, checksum: (art.metadata?.checksum as string | undefined) ?? sh.sha256 };
    });
    const artifact = shards ? undefined : findArtifact(c.artifact as string, 'the snapshot');
    const checksum = artifact ? ((artifact.metadata?.checksum as string | undefined) ?? (c.sha256 as string)) : '';
    const withAliases = ropts.aliases ?? target === c.name;
    return { recorded: c, target, artifact, shards, checksum, withAliases, viaAlias: undefined as string | undefined };
  });
  const targets = items.map((i) => i.target);
  const dup = targets.find((t, i) => targets.indexOf(t) !== i);
  if (dup) throw new BackupError('USAGE', `${component}: two collections would be restored into "${dup}"`, { component, hint: 'Give each a distinct restoreAs target.' });

  // Preflight (dry-run and real alike): reachable, authorised, same minor version.
  const token = jwtAccess(opts.apiKey);
  if (token && !('global' in token && token.global === 'm')) {
    // snapshot_api.rs upload_snapshot: ActixAccessManage, i.e. global manage access.
    throw new BackupError(
      'AUTH_FAILED',
      `${component}: the API key is a Qdrant JWT with ${describeTokenAccess(token)}; restoring a snapshot into Qdrant needs global manage access`,
      {
        component,
        hint: 'Restore with the read-write API key (service.api_key) or a JWT whose claims hold "access": "m". A collection-scoped token can back up (it needs "rw" on each collection) but not restore.',
      },
    );
  }
  const { version } = await a.version(call);
  const compat = snapshotCompatibility(recorded.qdrantVersion, version);
  if (!compat.ok) {
    throw new BackupError('UNSUPPORTED_VERSION', `${component}: cannot restore into Qdrant at ${a.target}: ${compat.reason}`, {
      component,
      hint: `Restore into a Qdrant ${recorded.qdrantVersion ?? ''} server (same major.minor, e.g. the qdrant/qdrant:v${recorded.qdrantVersion ?? 'X.Y.Z'} image), then upgrade it if needed.`,
    });
  }
  const warnings: string[] = compat.warning ? [compat.warning] : [];
  // Qdrant before 1.8 ignores `checksum` on upload: do not claim it verified anything.
  const serverChecksums = supportsSnapshotChecksum(version);
  if (!serverChecksums && items.length > 0) {
    warnings.push(
      `Qdrant ${version} does not verify an uploaded snapshot's checksum (from 1.8 on it does); the artifacts' SHA-256 is verified while they are read from storage`,
    );
  }
  const existing = new Set(await a.collections(call));
  const currentAliases = await a.aliases(call);
  const aliasTarget = new Map(currentAliases.map((x) => [x.alias_name, x.collection_name]));

  // Qdrant resolves an alias in the upload path to the collection behind it
  // (lib/storage/src/content_manager/toc/mod.rs resolve_name), so "create collection X"
  // would overwrite the live collection X points at.
  for (const i of items) {
    const behind = aliasTarget.get(i.target);
    if (behind === undefined) continue;
    if ((ropts.aliasTargets ?? 'refuse') === 'refuse') {
      throw new BackupError(
        'USAGE',
        `${component}: restore target "${i.target}" (for "${i.recorded.name}") is an alias of collection "${behind}" on ${a.target}: Qdrant would overwrite "${behind}"`,
        {
          component,
          hint: `Restore into a collection name that is not an alias (restoreAs or collectionSuffix), or pass aliasTargets: 'resolve' to replace "${behind}" on purpose.`,
        },
      );
    }
    i.viaAlias = i.target;
    i.target = behind;
  }
  {
    const resolved = items.map((i) => i.target);
    const twice = resolved.find((t, n) => resolved.indexOf(t) !== n);
    if (twice) {
      throw new BackupError('USAGE', `${component}: two collections would be restored into "${twice}" (through an alias)`, {
        component,
        hint: 'Give each a distinct restoreAs target.',
      });
    }
  }

  // Qdrant refuses a snapshot whose vectors config or shard number differ from the existing
  // collection ("Snapshot is not compatible with existing collection", recover.rs), after
  // the earlier collections of the set were already replaced: compare them all first.
  const incompatible: string[] = [];
  for (const i of items) {
    if (!existing.has(i.target)) continue;
    const live = (await a.collection(i.target, call)).config.params;
    if (stableJson(live.vectors ?? null) !== stableJson(i.recorded.vectors ?? null)) {
      const same = describeVectors(live.vectors) === describeVectors(i.recorded.vectors);
      incompatible.push(
        `collection "${i.target}" on ${a.target} has vectors ${describeVectors(live.vectors)}, the backup recorded ${describeVectors(i.recorded.vectors)}${
          same ? ' (vector parameters such as on_disk, hnsw or quantization differ)' : ''
        }`,
      );
    }
    if (i.shards) {
      // Shards are restored one by one into the shard of the same id (or key): the layouts must match.
      const { problems } = mapShards(i.shards.map((x) => x.recorded), shardsOf(await a.collectionCluster(i.target, call)));
      for (const p of problems) incompatible.push(`collection "${i.target}" on ${a.target}: ${p}`);
    } else if (typeof i.recorded.shardNumber === 'number' && typeof live.shard_number === 'number' && live.shard_number !== i.recorded.shardNumber) {
      incompatible.push(`collection "${i.target}" on ${a.target} has ${live.shard_number} shards, the backup recorded ${i.recorded.shardNumber}`);
    }
  }
  if (incompatible.length > 0) {
    throw new BackupError(
      'RESTORE_FAILED',
      `${component}: Qdrant cannot restore these snapshots over the existing collections (nothing was changed): ${incompatible.join('; ')}`,
      {
        component,
        hint: 'Restore into fresh collection names (restoreAs or collectionSuffix), or delete those collections first if replacing them is intended.',
      },
    );
  }

  const plan: string[] = [];
  if (items.length === 0) plan.push('nothing to restore: the set holds no Qdrant collections');
  for (const i of items) {
    const via = i.viaAlias ? ` (restore target "${i.viaAlias}" is an alias of "${i.target}")` : '';
    if (i.shards) {
      const n = i.shards.length;
      const layout = `${n} shard${n === 1 ? '' : 's'}${i.recorded.replicationFactor ? `, replication factor ${i.recorded.replicationFactor}` : ''}`;
      const from = `${n} shard snapshot${n === 1 ? '' : 's'} (${expectedCount(i.recorded)} points, ${describeVectors(i.recorded.vectors)}, from Qdrant ${recorded.qdrantVersion ?? '?'})`;
      plan.push(
        existing.has(i.target)
          ? `replace the ${layout} of collection "${i.target}"${via} (exists, its data will be overwritten) with ${from}, each uploaded to a peer holding that shard`
          : `create collection "${i.target}" (${layout}) and upload ${from}, each to a peer holding that shard`,
      );
      continue;
    }
    const source = `${(i.artifact as ArtifactRecord).path} (${expectedCount(i.recorded)} points, ${describeVectors(i.recorded.vectors)}, from Qdrant ${recorded.qdrantVersion ?? '?'})`;
    plan.push(
      existing.has(i.target)
        ? `replace collection "${i.target}"${via} (exists, its data will be overwritten) with ${source}`
        : `create collection "${i.target}" from ${source}`,
    );
  }
  const actions: AliasOperation[] = [];
  for (const i of items) {
    for (const alias of i.recorded.aliases) {
      if (!i.withAliases) {
        plan.push(`leave alias "${alias}" unchanged ("${i.recorded.name}" is restored as "${i.target}"; pass aliases: true to move it)`);
        continue;
      }
      if (existing.has(alias) || items.some((x) => x.target === alias)) {
        throw new BackupError('RESTORE_FAILED', `${component}: cannot recreate alias "${alias}": a collection with that name exists on ${a.target}`, {
          component,
          hint: 'Rename or delete that collection, or restore with aliases: false.',
        });
      }
      const current = aliasTarget.get(alias);
      if (current === i.target) {
        plan.push(`alias "${alias}" already points at "${i.target}"`);
        continue;
      }
      if (current !== undefined) actions.push({ delete_alias: { alias_name: alias } });
      actions.push({ create_alias: { collection_name: i.target, alias_name: alias } });
      plan.push(`point alias "${alias}" at "${i.target}"${current !== undefined ? ` (now at "${current}")` : ''}`);
    }
  }
  const metadata = { qdrantVersion: version, url: a.target, targets: Object.fromEntries(items.map((i) => [i.recorded.name, i.target])) };
  if (ctx.dryRun) return { plan, warnings, metadata };

  const restored: { collection: string; target: string; pointsCount: number | null }[] = [];
  const mismatches: string[] = [];
  // The name Qdrant stores the upload under (snapshots/<target>/<name>): unique per run, so
  // it never replaces a snapshot of the user's, and deleted again below.
  const uploadTag = `scholaria-restore-${ctx.setId}-${randomBytes(4).toString('hex')}`;
  let targetPeers: PeerDirectory | undefined;
  const peersOfTarget = async (): Promise<PeerDirectory> => {
    if (targetPeers) return targetPeers;
    let cluster: ClusterInfo = { enabled: false, peers: [] };
    try {
      cluster = await a.cluster(call);
    } catch (error) {
      ctx.logger.warn(`${component}: could not read the cluster status (${a.translate(error, 'reading GET /cluster', 'RESTORE_FAILED').message}); assuming a single node`);
    }
    targetPeers = peerDirectory(a, opts, cluster, component);
    return targetPeers;
  };
  for (const i of items) {
    if (i.shards) {
      const count = await restoreShards(core, ctx, i, existing.has(i.target), uploadTag, serverChecksums, call, warnings, await peersOfTarget());
      restored.push({ collection: i.recorded.name, target: i.target, pointsCount: count });
      if (!countMatches(i.recorded, count)) mismatches.push(`"${i.target}" has ${String(count)} points, the backup recorded ${expectedCount(i.recorded)}`);
      continue;
    }
    const art = i.artifact as ArtifactRecord;
    ctx.logger.info(`${component}: uploading ${art.name} into collection "${i.target}"`, { collection: i.target });
    const uploadName = `${uploadTag}-${art.name}`.replace(/[^A-Za-z0-9._-]/g, '_');
    let uploaded = false;
    try {
      await a.upload(
        i.target,
        async () => ({ stream: await ctx.open(art.name), size: art.rawSize, filename: uploadName }),
        serverChecksums ? i.checksum : undefined,
        call,
      );
      uploaded = true;
      const count = await a.settledCount(i.target, call);
      restored.push({ collection: i.recorded.name, target: i.target, pointsCount: count });
      if (!countMatches(i.recorded, count)) {
        mismatches.push(`"${i.target}" has ${String(count)} points, the backup recorded ${expectedCount(i.recorded)}`);
      }
    } finally {
      const left = await removeUploadedSnapshot(a, i.target, uploadName, uploaded, ctx);
      if (left) warnings.push(left);
    }
  }
  if (actions.length > 0) await a.updateAliases(actions, call);

  if (mismatches.length > 0) {
    // Only a backup of one node of a cluster (before shard capture) may legitimately miss points.
    const multiPeer = recorded.cluster?.mode !== 'shards' && (recorded.cluster?.peers ?? 1) > 1;
    const message = `${component}: points_count after restore differs from the backup: ${mismatches.join('; ')}`;
    if (multiPeer) {
      warnings.push(`${message} (expected: the backup came from one peer of a cluster)`);
    } else {
      throw new BackupError('RESTORE_FAILED', message, {
        component,
        hint: 'Something wrote to the collection during the restore, or the snapshot is not the one recorded; run the restore again and compare with verify.',
      });
    }
  }
  return { plan, warnings, metadata: { ...metadata, restored } };
}
