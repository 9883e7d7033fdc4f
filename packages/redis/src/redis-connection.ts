import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import { Redis, type RedisOptions } from 'ioredis';
import type { ResolvedRedisSourceOptions, SecretValue } from './redis-options.js';
import { connectionError } from './redis-errors.js';

/** Where the raw replication socket of rdb mode connects, with the same credentials as the client. */
export interface RawEndpoint {
  host?: string;
  port?: number;
  path?: string;
  tls?: TlsConnectionOptions;
  username?: string;
  password?: string;
}

export interface OpenedClient {
  client: Redis;
  /** Human readable, credential-free description of the target, e.g. 'redis://127.0.0.1:6379'. */
  target: string;
  endpoint(): RawEndpoint;
  close(): Promise<void>;
}

async function resolveSecret(value: SecretValue | undefined): Promise<string | undefined> {
  if (value === undefined) return undefined;
  return typeof value === 'function' ? await value() : value;
}

function tlsOptions(value: boolean | TlsConnectionOptions | undefined): TlsConnectionOptions | undefined {
  if (value === undefined || value === false) return undefined;
  return value === true ? {} : value;
}

/** Credential-free description of where options point. */
export function describeTarget(options: ResolvedRedisSourceOptions): string {
  if (options.client) {
    const o = options.client.options;
    if (o.sentinels?.length) return `redis+sentinel://${o.sentinels.map((s) => `${s.host}:${s.port}`).join(',')}/${o.name ?? ''}`;
    if (o.path) return `redis+unix://${o.path}`;
    return `${o.tls ? 'rediss' : 'redis'}://${o.host ?? 'localhost'}:${o.port ?? 6379}`;
  }
  if (options.url) {
    try {
      const u = new URL(options.url);
      return `${u.protocol}//${u.hostname}:${u.port || 6379}`;
    } catch {
      return 'redis://(unparsable url)';
    }
  }
  if (options.sentinels) return `redis+sentinel://${options.sentinels.map((s) => `${s.host}:${s.port}`).join(',')}/${options.sentinelName}`;
  if (options.path) return `redis+unix://${options.path}`;
  return `${options.tls ? 'rediss' : 'redis'}://${options.host ?? 'localhost'}:${options.port ?? 6379}`;
}

/**
 * Opens a dedicated ioredis connection. A client handed in by the caller is duplicated, never
 * used directly: the backup SELECTs databases and must neither change the caller's selected
 * database nor be closed with it. Fails fast on the first connect error instead of letting
 * ioredis retry forever.
 */
export async function openClient(options: ResolvedRedisSourceOptions): Promise<OpenedClient> {
  const target = describeTarget(options);
  const common: RedisOptions = {
    lazyConnect: true,
    connectTimeout: options.connectTimeoutMs,
    connectionName: 'scholaria-backup',
    disableClientInfo: true,
    // The ready check runs INFO and prints a warning where ACLs refuse it; the PING below is the check.
    enableReadyCheck: false,
    enableAutoPipelining: false,
    keyPrefix: '',
    db: 0,
    maxRetriesPerRequest: 0,
    // No silent reconnects: a reconnect would re-SELECT the database ioredis remembers, not the
    // one a pipeline switched to, and resend half-answered batches. A dropped connection fails
    // the run with a retryable error instead.
    retryStrategy: () => null,
    sentinelRetryStrategy: () => null,
    autoResendUnfulfilledCommands: false,
  };

  let client: Redis;
  if (options.client) {
    client = options.client.duplicate(common);
  } else {
    const password = await resolveSecret(options.password);
    const auth: RedisOptions = {
      ...(options.username !== undefined ? { username: options.username } : {}),
      ...(password !== undefined ? { password } : {}),
    };
    const tls = tlsOptions(options.tls);
    if (options.url) {
      client = new Redis(options.url, { ...common, ...auth, ...(tls ? { tls } : {}) });
    } else if (options.sentinels) {
      const sentinelPassword = await resolveSecret(options.sentinelPassword);
      const sentinelTls = tlsOptions(options.sentinelTls);
      client = new Redis({
        ...common,
        ...auth,
        sentinels: options.sentinels,
        name: options.sentinelName!,
        ...(options.sentinelUsername !== undefined ? { sentinelUsername: options.sentinelUsername } : {}),
        ...(sentinelPassword !== undefined ? { sentinelPassword } : {}),
        ...(tls ? { tls } : {}),
        ...(sentinelTls ? { enableTLSForSentinelMode: true, sentinelTLS: sentinelTls } : {}),
      });
    } else if (options.path) {
      client = new Redis({ ...common, ...auth, path: options.path });
    } else {
      client = new Redis({ ...common, ...auth, host: options.host ?? 'localhost', port: options.port ?? 6379, ...(tls ? { tls } : {}) });
    }
  }
  // ioredis reports the real failure (ECONNREFUSED, a rejected AUTH) as an event and rejects
  // connect() with a generic "Connection is closed"; keep the event's error, it explains.
  let emitted: unknown;
  client.on('error', (error: unknown) => {
    emitted ??= error;
  });

  const close = async () => {
    try {
      await client.quit();
    } catch {
      client.disconnect();
    }
  };

  try {
    await client.connect();
    // ioredis reports a rejected AUTH through an event and a reconnect; a PING makes it an answer.
    await client.ping();
  } catch (error) {
    client.disconnect();
    throw connectionError(emitted ?? error, target);
  }

  return {
    client,
    target,
    close,
    endpoint() {
      const o = client.options;
      const stream = (client as unknown as { stream?: { remoteAddress?: string; remotePort?: number } }).stream;
      const viaSentinel = Boolean(o.sentinels?.length);
      const tls = o.tls ? (o.tls as TlsConnectionOptions) : undefined;
      return {
        ...(o.path ? { path: o.path } : {}),
        ...(!o.path ? { host: viaSentinel ? stream?.remoteAddress : o.host, port: viaSentinel ? stream?.remotePort : o.port } : {}),
        ...(tls ? { tls: { servername: viaSentinel ? undefined : o.host, ...tls } } : {}),
        ...(o.username ? { username: o.username } : {}),
        ...(o.password ? { password: o.password } : {}),
      };
    },
  };
}
