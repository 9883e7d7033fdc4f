/**
 * The `check` operation: reachability, version, configured collections and, in a cluster, every
 * peer's REST URL; and `verify`: the restored collections compared with what the set recorded.
 */
import { BackupError, type SourceCheckResult, type SourceVerifyContext, type SourceVerifyResult } from '@scholaria/backup-core';
import type { CallOptions, CollectionInfo } from './qdrant-api.js';
import { peerDirectory } from './qdrant-cluster.js';
import { countMatches, describeVectors, expectedCount, isLoopback, parseRecorded, quoteList, stableJson, vectorLayout } from './qdrant-recorded.js';
import type { SourceCore } from './qdrant-source-core.js';

export async function checkQdrant(core: SourceCore, checkOptions?: { signal?: AbortSignal }): Promise<SourceCheckResult> {
  const { component, opts } = core;
  const a = core.getApi();
  const call: CallOptions = { ...(checkOptions?.signal ? { signal: checkOptions.signal } : {}), failCode: 'SOURCE_FAILED' };
  const problems: string[] = [];
  const warnings: string[] = [];
  const details: Record<string, unknown> = { url: a.target };
  const problem = (e: unknown, op: string) => {
    const err = a.translate(e, op);
    problems.push(err.hint ? `${err.message}. ${err.hint}` : err.message);
  };
  if (opts.apiKey && a.url.protocol === 'http:' && !isLoopback(a.url)) {
    warnings.push(`the API key is sent over plain http to ${a.target}; use https`);
  }
  try {
    const { version } = await a.version(call);
    details.version = version;
  } catch (e) {
    problem(e, 'reading the server version');
    return { ok: false, details, problems, warnings };
  }
  try {
    const names = await a.collections(call);
    details.collections = names;
    const missing = (opts.collections ?? []).filter((c) => !names.includes(c));
    if (missing.length) problems.push(`collection${missing.length > 1 ? 's' : ''} ${quoteList(missing)} configured but not on the server`);
  } catch (e) {
    problem(e, 'listing collections');
  }
  try {
    const cluster = await a.cluster(call);
    details.cluster = { enabled: cluster.enabled, peers: cluster.enabled ? cluster.peers.length : 1, ...(cluster.peerId ? { peerId: cluster.peerId } : {}) };
    if (cluster.enabled && cluster.peers.length > 1) {
      // Backups snapshot each shard on a peer holding it: every peer must be reachable here.
      const peers = peerDirectory(a, opts, cluster, component);
      (details.cluster as Record<string, unknown>).peerUrls = Object.fromEntries(cluster.peers.map((p) => [p.id, peers.urls.get(p.id) ?? null]));
      for (const p of cluster.peers) {
        try {
          await peers.api(p.id).version(call);
        } catch (e) {
          const err = BackupError.isInstance(e) ? e : a.translate(e, `reaching peer ${p.id}`);
          problems.push(
            `Qdrant peer ${p.id} (p2p ${p.uri}) is not reachable at ${peers.urls.get(p.id) ?? '(no URL)'}: ${err.message}. Set QDRANT_PEER_URLS or QDRANT_PEER_URL_TEMPLATE so every peer's REST API is reachable; a backup snapshots each shard on a peer holding it`,
          );
        }
      }
    }
  } catch (e) {
    warnings.push(`could not read the cluster status: ${a.translate(e, 'reading GET /cluster').message}`);
  }
  return { ok: problems.length === 0, details, problems, warnings };
}

export async function verifyQdrant(core: SourceCore, ctx: SourceVerifyContext): Promise<SourceVerifyResult> {
  const { component } = core;
  const a = core.getApi();
  const call: CallOptions = { signal: ctx.signal, logger: ctx.logger, failCode: 'VERIFY_FAILED' };
  const recorded = parseRecorded(ctx.component.metadata, core.component);
  const mismatches: string[] = [];
  let aliases: { alias_name: string; collection_name: string }[] = [];
  try {
    aliases = await a.aliases(call);
  } catch (e) {
    const err = a.translate(e, 'listing aliases', 'VERIFY_FAILED');
    return { ok: false, mismatches: [err.message] };
  }
  for (const c of recorded.collections) {
    const target = core.restoreTarget(c.name);
    let info: CollectionInfo;
    try {
      info = await a.collection(target, call);
    } catch (e) {
      const err = a.translate(e, `reading collection "${target}"`, 'VERIFY_FAILED');
      mismatches.push(err.code === 'NOT_FOUND' ? `collection "${target}" does not exist` : err.message);
      continue;
    }
    // points_count of CollectionInfo is an estimate; compare the exact count.
    let count: number | null | undefined = info.points_count;
    try {
      count = await a.exactCount(target, call);
    } catch (e) {
      mismatches.push(a.translate(e, `counting the points of "${target}"`, 'VERIFY_FAILED').message);
      continue;
    }
    if (!countMatches(c, count)) {
      mismatches.push(`collection "${target}" has ${String(count)} points, the backup recorded ${expectedCount(c)}`);
    }
    if (stableJson(vectorLayout(info.config.params.vectors)) !== stableJson(vectorLayout(c.vectors))) {
      mismatches.push(
        `collection "${target}" has vectors ${describeVectors(info.config.params.vectors)}, the backup recorded ${describeVectors(c.vectors)}`,
      );
    }
    if (target === c.name) {
      for (const alias of c.aliases) {
        const at = aliases.find((x) => x.alias_name === alias)?.collection_name;
        if (at !== target) mismatches.push(`alias "${alias}" ${at ? `points at "${at}"` : 'is missing'}, the backup had it on "${target}"`);
      }
    }
  }
  return { ok: mismatches.length === 0, mismatches };
}
