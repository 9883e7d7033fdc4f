import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { QdrantClient, type Schemas } from '@qdrant/js-client-rest';
import { type BackupError, type BackupErrorCode, type Logger } from '@scholaria/backup-core';
import type { ResolvedQdrantOptions } from './qdrant-options.js';
import { translateError } from './qdrant-errors.js';
import { multipartFileBody, rawRequest, readResult, readText, type RawHttpConfig } from './qdrant-http.js';
import { withRetry } from './retry.js';
import { resumableDownload } from './resumable-download.js';

export type CollectionInfo = Schemas['CollectionInfo'];
export type SnapshotDescription = Schemas['SnapshotDescription'];
export type AliasDescription = Schemas['AliasDescription'];
export type AliasOperation = Schemas['AliasOperations'];

export interface ClusterInfo {
  enabled: boolean;
  peerId?: string;
  peers: { id: string; uri: string }[];
}

export interface CallOptions {
  signal?: AbortSignal;
  logger?: Logger;
  failCode?: BackupErrorCode;
}

const USER_AGENT = 'scholaria-backup-qdrant';

/** Qdrant's u64 ids (peer ids) come back as BigInt from the client's JSON reviver; manifests need JSON. */
export function plainJson<T>(value: T): T {
  return JSON.parse(JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? (v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString()) : v))) as T;
}

export const enc = encodeURIComponent;

/** JSON.parse that keeps integers of 16+ digits (Qdrant's u64 peer ids) as strings instead of rounding them. */
export function parseLongJson(text: string): unknown {
  return JSON.parse(text.replace(/([:[,]\s*)(-?\d{16,})(?=\s*[,}\]])/g, '$1"$2"'));
}

/** One replica of a shard as `GET /collections/{c}/cluster` reports it. */
export interface ShardReplicaInfo {
  shardId: number;
  shardKey?: string | number;
  peerId: string;
  state: string;
  /** Only for this peer's own (local) shards. */
  pointsCount?: number;
}

/** `CollectionClusterInfo` (lib/collection/src/operations/types.rs), peer ids as strings. */
export interface CollectionClusterInfo {
  peerId: string;
  shardCount: number;
  replicas: ShardReplicaInfo[];
  transfers: number;
}

/** `/collections/{c}` or `/collections/{c}/shards/{s}`: where the snapshot endpoints of a collection or a shard live. */
export function snapshotBase(collection: string, shard?: number): string {
  return shard === undefined ? `/collections/${enc(collection)}` : `/collections/${enc(collection)}/shards/${shard}`;
}

/** 'http://host:6333/prefix' for messages: never credentials, query or fragment. */
export function displayUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;
}

/**
 * Every Qdrant call the source makes: JSON endpoints through @qdrant/js-client-rest, snapshot
 * transfers through raw HTTP. Each call is retried on transient errors and its failure is
 * translated into a BackupError that names the call and the server.
 */
export class QdrantApi {
  readonly url: URL;
  readonly target: string;
  private fastClient: QdrantClient | undefined;
  private readonly raw: RawHttpConfig;

  constructor(
    private readonly options: ResolvedQdrantOptions,
    private readonly component: string,
  ) {
    this.url = new URL(options.url);
    this.target = displayUrl(this.url);
    this.raw = { baseUrl: this.url, userAgent: USER_AGENT, ...(options.apiKey ? { apiKey: options.apiKey } : {}) };
  }

  /** The same API (key, timeouts, retries) on another peer of the cluster. */
  forPeer(url: string): QdrantApi {
    return new QdrantApi({ ...this.options, url }, this.component);
  }

  private async rawJson(op: string, path: string, options?: CallOptions): Promise<unknown> {
    return await this.call(
      op,
      async () => {
        const res = await rawRequest(this.raw, {
          method: 'GET',
          path,
          idleTimeoutMs: this.options.timeoutMs,
          ...(options?.signal ? { signal: options.signal } : {}),
        });
        return (parseLongJson(await readText(res)) as { result?: unknown }).result;
      },
      options,
    );
  }

  /** `GET /collections/{c}/cluster`: the shards of a collection and which peer holds which replica. */
  async collectionCluster(collection: string, options?: CallOptions): Promise<CollectionClusterInfo> {
    const r = (await this.rawJson(`reading the shard placement of collection "${collection}" (GET /collections/${collection}/cluster)`, `/collections/${enc(collection)}/cluster`, options)) as {
      peer_id?: number | string;
      shard_count?: number;
      local_shards?: { shard_id: number; shard_key?: string | number; points_count?: number; state?: string }[];
      remote_shards?: { shard_id: number; shard_key?: string | number; peer_id: number | string; state?: string }[];
      shard_transfers?: unknown[];
    };
    const peerId = String(r?.peer_id ?? '');
    const key = (k: string | number | undefined) => (k !== undefined && k !== null ? { shardKey: k } : {});
    return {
      peerId,
      shardCount: Number(r?.shard_count ?? 0),
      transfers: r?.shard_transfers?.length ?? 0,
      replicas: [
        ...(r?.local_shards ?? []).map((l) => ({ shardId: l.shard_id, ...key(l.shard_key), peerId, state: String(l.state ?? 'Active'), ...(typeof l.points_count === 'number' ? { pointsCount: l.points_count } : {}) })),
        ...(r?.remote_shards ?? []).map((x) => ({ shardId: x.shard_id, ...key(x.shard_key), peerId: String(x.peer_id), state: String(x.state ?? 'Active') })),
      ].sort((a, b) => a.shardId - b.shardId || a.peerId.localeCompare(b.peerId)),
    };
  }

  /** `GET /collections/{c}/shards/{s}/snapshots` on this peer. */
  async listShardSnapshots(collection: string, shard: number, options?: CallOptions): Promise<SnapshotDescription[]> {
    return ((await this.rawJson(`listing the snapshots of shard ${shard} of collection "${collection}"`, `${snapshotBase(collection, shard)}/snapshots`, options)) ?? []) as SnapshotDescription[];
  }

  /** `DELETE /collections/{c}/shards/{s}/snapshots/{name}?wait=true` on this peer. */
  async deleteShardSnapshot(collection: string, shard: number, snapshot: string, options?: CallOptions): Promise<void> {
    await this.call(
      `deleting snapshot "${snapshot}" of shard ${shard} of collection "${collection}"`,
      async () => {
        const res = await rawRequest(this.raw, {
          method: 'DELETE',
          path: `${snapshotBase(collection, shard)}/snapshots/${enc(snapshot)}`,
          query: { wait: 'true' },
          idleTimeoutMs: this.options.timeoutMs,
          ...(options?.signal ? { signal: options.signal } : {}),
        });
        await readResult(res);
      },
      options,
    );
  }

  /** `PUT /collections/{c}` with the given body (creating a collection before its shards are uploaded). */
  async createCollection(collection: string, body: Record<string, unknown>, options?: CallOptions): Promise<void> {
    await this.call(`creating collection "${collection}"`, () => this.client().createCollection(collection, body as never), options);
  }

  /** `PUT /collections/{c}/shards`: a shard key of a collection with custom sharding. */
  async createShardKey(collection: string, body: Record<string, unknown>, options?: CallOptions): Promise<void> {
    await this.call(`creating shard key ${JSON.stringify(body.shard_key)} of collection "${collection}"`, () => this.client().createShardKey(collection, body as never), options);
  }

  private makeClient(timeout: number): QdrantClient {
    const port = this.url.port ? Number(this.url.port) : this.url.protocol === 'https:' ? 443 : 80;
    const prefix = this.url.pathname.replace(/\/+$/, '');
    return new QdrantClient({
      url: `${this.url.protocol}//${this.url.host}`,
      port,
      ...(prefix ? { prefix } : {}),
      timeout,
      // The version check would run in the background and print with console.warn.
      checkCompatibility: false,
      // Passed as a header rather than `apiKey`, which warns on the console over plain http.
      headers: { 'user-agent': USER_AGENT, ...(this.options.apiKey ? { 'api-key': this.options.apiKey } : {}) },
    });
  }

  private client(): QdrantClient {
    return (this.fastClient ??= this.makeClient(this.options.timeoutMs));
  }

  translate(error: unknown, op: string, failCode: BackupErrorCode = 'SOURCE_FAILED'): BackupError {
    return translateError(error, {
      op,
      target: this.target,
      hasApiKey: Boolean(this.options.apiKey),
      failCode,
      secrets: this.options.apiKey ? [this.options.apiKey] : [],
      component: this.component,
    });
  }

  call<T>(op: string, fn: (attempt: number) => Promise<T>, options: CallOptions = {}): Promise<T> {
    return withRetry(op, fn, {
      retries: this.options.retries,
      delayMs: this.options.retryDelayMs,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
      translate: (error) => this.translate(error, op, options.failCode),
    });
  }

  async version(options?: CallOptions): Promise<{ version: string; commit?: string }> {
    const info = await this.call('reading the server version (GET /)', () => this.client().versionInfo(), options);
    if (!info || typeof info.version !== 'string') {
      throw this.translate(new Error('GET / did not return a version: is this a Qdrant server?'), 'reading the server version (GET /)', options?.failCode);
    }
    return { version: info.version, ...(info.commit ? { commit: info.commit } : {}) };
  }

  async collections(options?: CallOptions): Promise<string[]> {
    const res = await this.call('listing collections (GET /collections)', () => this.client().getCollections(), options);
    return res.collections.map((c) => c.name).sort();
  }

  async collection(name: string, options?: CallOptions): Promise<CollectionInfo> {
    return plainJson(await this.call(`reading collection "${name}"`, () => this.client().getCollection(name), options));
  }

  /** `POST /collections/{c}/points/count {exact: true}`: `points_count` of GET /collections/{c} is an estimate. */
  async exactCount(collection: string, options?: CallOptions): Promise<number> {
    const res = await this.call(`counting the points of collection "${collection}" (exact)`, () => this.client().count(collection, { exact: true }), options);
    return res.count;
  }

  /**
   * The exact point count once Qdrant finished indexing a collection: it polls the collection
   * while its status is `yellow` (optimizing; "approximate count might be unreliable during the
   * indexing process", Qdrant's OpenAPI for CountRequest.exact), up to `snapshotTimeoutMs`,
   * then counts exactly. `red` fails. `grey` (optimizations pending) holds all points.
   */
  async settledCount(collection: string, options: CallOptions = {}): Promise<number> {
    const started = Date.now();
    let delay = 50;
    for (;;) {
      const info = await this.collection(collection, options);
      if (info.status === 'red') {
        throw this.translate(
          new Error(`collection "${collection}" has status red (optimizer: ${JSON.stringify(info.optimizer_status)}) after the restore`),
          `checking collection "${collection}" after the restore`,
          options.failCode,
        );
      }
      if (info.status !== 'yellow') break;
      if (Date.now() - started > this.options.snapshotTimeoutMs) {
        options.logger?.warn(`collection "${collection}" is still optimizing (yellow); counting its points anyway`);
        break;
      }
      await sleep(delay, undefined, options.signal ? { signal: options.signal } : {});
      delay = Math.min(delay * 2, 2000);
    }
    return await this.exactCount(collection, options);
  }

  async aliases(options?: CallOptions): Promise<AliasDescription[]> {
    const res = await this.call('listing aliases (GET /aliases)', () => this.client().getAliases(), options);
    return res.aliases;
  }

  async updateAliases(actions: AliasOperation[], options?: CallOptions): Promise<void> {
    await this.call('updating aliases (POST /collections/aliases)', () => this.client().updateCollectionAliases({ actions }), options);
  }

  /**
   * Through raw HTTP: peer ids are random u64 values that JSON.parse rounds on Node 20 (the
   * client's BigInt reviver needs JSON.rawJSON, Node 21+), so long integers are read as strings.
   */
  async cluster(options?: CallOptions): Promise<ClusterInfo> {
    const body = await this.call(
      'reading the cluster status (GET /cluster)',
      async () => {
        const res = await rawRequest(this.raw, {
          method: 'GET',
          path: '/cluster',
          idleTimeoutMs: this.options.timeoutMs,
          ...(options?.signal ? { signal: options.signal } : {}),
        });
        return parseLongJson(await readText(res)) as { result?: unknown };
      },
      options,
    );
    const status = body.result as { status?: string; peer_id?: number | string; peers?: Record<string, { uri?: string }> } | undefined;
    if (!status || status.status !== 'enabled') return { enabled: false, peers: [] };
    return {
      enabled: true,
      ...(status.peer_id !== undefined ? { peerId: String(status.peer_id) } : {}),
      peers: Object.entries(status.peers ?? {}).map(([id, p]) => ({ id, uri: p?.uri ?? '' })),
    };
  }

  async listSnapshots(collection: string, options?: CallOptions): Promise<SnapshotDescription[]> {
    return await this.call(`listing the snapshots of collection "${collection}"`, () => this.client().listSnapshots(collection), options);
  }

  /**
   * `POST /collections/{c}/snapshots?wait=true` through raw HTTP, so `snapshotTimeoutMs` is an
   * inactivity limit on the connection (Qdrant sends nothing until the snapshot is done) and no
   * total limit applies. Qdrant finishes a snapshot even when the request failed (a proxy's
   * timeout, a dropped connection: it runs in a spawned task), so before each retry the
   * snapshots of the collection are listed and one that appeared since `before` (Qdrant names
   * them `<collection>-<peer>-<time>.snapshot`) is adopted instead of creating another.
   */
  async createSnapshot(
    collection: string,
    before: Set<string> | undefined,
    options: CallOptions = {},
    shard?: number,
  ): Promise<SnapshotDescription & { adopted?: true; failedAttempts: number }> {
    const op = shard === undefined ? `creating a snapshot of collection "${collection}"` : `creating a snapshot of shard ${shard} of collection "${collection}" on ${this.target}`;
    const post = async () => {
      const res = await rawRequest(this.raw, {
        method: 'POST',
        path: `${snapshotBase(collection, shard)}/snapshots`,
        query: { wait: 'true' },
        idleTimeoutMs: this.options.snapshotTimeoutMs,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      const desc = (await readResult(res)) as SnapshotDescription | undefined;
      if (!desc || typeof desc.name !== 'string') throw new Error('Qdrant answered without a snapshot description');
      return desc;
    };
    return await this.call(
      op,
      async (attempt) => {
        if (attempt > 0 && before) {
          const fresh = await this.snapshotsSince(collection, before, options, shard);
          const adopt = fresh[fresh.length - 1];
          if (adopt) {
            options.logger?.warn(`${op}: the failed attempt's snapshot "${adopt.name}" was finished by Qdrant; using it instead of creating another`);
            return { ...adopt, adopted: true as const, failedAttempts: attempt };
          }
        }
        return { ...(await post()), failedAttempts: attempt };
      },
      options,
    );
  }

  /** Snapshots of `collection` that are not in `before` and carry its name prefix, oldest first. */
  async snapshotsSince(collection: string, before: Set<string>, options?: CallOptions, shard?: number): Promise<SnapshotDescription[]> {
    const now = shard === undefined ? await this.listSnapshots(collection, options) : await this.listShardSnapshots(collection, shard, options);
    // Shard snapshots are named `<collection>-shard-<id>-<time>.snapshot` (shard_holder/mod.rs).
    const prefix = shard === undefined ? `${collection}-` : `${collection}-shard-${shard}-`;
    return now
      .filter((d) => !before.has(d.name) && d.name.startsWith(prefix) && d.name.endsWith('.snapshot'))
      .sort((x, y) => String(x.creation_time ?? '').localeCompare(String(y.creation_time ?? '')) || x.name.localeCompare(y.name));
  }

  async deleteSnapshot(collection: string, snapshot: string, options?: CallOptions): Promise<void> {
    await this.call(
      `deleting snapshot "${snapshot}" of collection "${collection}"`,
      () => this.client().deleteSnapshot(collection, snapshot, { wait: true }),
      options,
    );
  }

  /**
   * Opens the download of a snapshot. Retries cover failures before the first byte; a transfer
   * that breaks later (connection lost, idle for `snapshotTimeoutMs`) is resumed up to
   * `retries` times from the first missing byte with `Range`.
   */
  async download(collection: string, snapshot: string, options: CallOptions = {}, shard?: number): Promise<Readable> {
    const op = `downloading snapshot "${snapshot}" of ${shard === undefined ? '' : `shard ${shard} of `}collection "${collection}"${shard === undefined ? '' : ` from ${this.target}`}`;
    const open = (headers: Record<string, string>) =>
      rawRequest(this.raw, {
        method: 'GET',
        path: `${snapshotBase(collection, shard)}/snapshots/${enc(snapshot)}`,
        headers: { accept: 'application/octet-stream', ...headers },
        idleTimeoutMs: this.options.snapshotTimeoutMs,
        ...(options.signal ? { signal: options.signal } : {}),
      });
    const first = await this.call(op, () => open({}), options);
    return resumableDownload(first, {
      resumes: this.options.retries,
      resumable: (error) => !options.signal?.aborted && this.translate(error, op).retryable,
      reopen: (offset, validator) =>
        this.call(`resuming the download of snapshot "${snapshot}" at byte ${offset}`, () =>
          open({ range: `bytes=${offset}-`, ...(validator ? { 'if-range': validator } : {}) }), options),
      onResume: (offset, error, attempt) =>
        options.logger?.warn(`${op} broke after ${offset} bytes; resuming from there (resume ${attempt} of ${this.options.retries})`, {
          error: this.translate(error, op).message,
        }),
    });
  }

  /**
   * Upload-recovers `target` from a snapshot: multipart field `snapshot`, `priority=snapshot`
   * (Qdrant's default since 1.10, explicit for older servers and for a node with other active
   * replicas), `checksum` verified by Qdrant before it touches the collection, `wait=true`.
   * `open` is called per attempt for a fresh stream. Qdrant keeps the uploaded file as
   * snapshots/<target>/<filename> (qdrant/qdrant#10207); the caller deletes it with
   * `deleteSnapshot(target, filename)`.
   */
  async upload(
    target: string,
    open: () => Promise<{ stream: Readable; size?: number; filename: string }>,
    checksum: string | undefined,
    options: CallOptions = {},
    shard?: number,
  ): Promise<void> {
    const op = shard === undefined ? `uploading a snapshot into collection "${target}"` : `uploading the snapshot of shard ${shard} into collection "${target}" on ${this.target}`;
    await this.call(
      op,
      async () => {
        const file = await open();
        const multipart = multipartFileBody('snapshot', file.filename, file.stream, file.size);
        const res = await rawRequest(this.raw, {
          method: 'POST',
          // Shards: POST /collections/{c}/shards/{s}/snapshots/upload (snapshot_api.rs upload_shard_snapshot).
          path: `${snapshotBase(target, shard)}/snapshots/upload`,
          query: { priority: 'snapshot', wait: 'true', ...(checksum ? { checksum } : {}) },
          headers: {
            'content-type': multipart.contentType,
            ...(multipart.contentLength !== undefined ? { 'content-length': multipart.contentLength } : {}),
          },
          body: multipart.body,
          idleTimeoutMs: this.options.snapshotTimeoutMs,
          ...(options.signal ? { signal: options.signal } : {}),
        });
        const result = await readResult(res);
        // A collection upload answers `true`; a shard upload `null` (snapshot_api.rs
        // upload_shard_snapshot's future yields `()`, serialised as `"result": null`).
        if (result !== true && !(shard !== undefined && result === null)) {
          throw new Error(`Qdrant answered ${JSON.stringify(result)} instead of ${shard === undefined ? 'true' : 'null'}`);
        }
      },
      { ...options, failCode: options.failCode ?? 'RESTORE_FAILED' },
    );
  }
}
