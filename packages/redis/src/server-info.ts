/** Parses the text of `INFO` into `field -> value` (sections flattened). */
export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    if (!line || line.startsWith('#')) continue;
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

/** `db3:keys=10,expires=2,avg_ttl=0` lines of `INFO keyspace` as `{ 3: { keys: 10, expires: 2 } }`. */
export function parseKeyspace(info: Record<string, string>): Map<number, { keys: number; expires: number }> {
  const out = new Map<number, { keys: number; expires: number }>();
  for (const [field, value] of Object.entries(info)) {
    const m = /^db(\d+)$/.exec(field);
    if (!m) continue;
    const fields = Object.fromEntries(value.split(',').map((kv) => kv.split('=') as [string, string]));
    out.set(Number(m[1]), { keys: Number(fields.keys ?? 0), expires: Number(fields.expires ?? 0) });
  }
  return out;
}

export interface ServerFacts {
  serverVersion: string;
  /** 'standalone' | 'sentinel' | 'cluster' */
  redisMode: string;
  role: string;
  usedMemory: number;
  keyspace: Map<number, { keys: number; expires: number }>;
}

export function serverFacts(info: Record<string, string>): ServerFacts {
  return {
    serverVersion: info.redis_version ?? 'unknown',
    redisMode: info.redis_mode ?? 'standalone',
    role: info.role ?? 'unknown',
    usedMemory: Number(info.used_memory ?? 0),
    keyspace: parseKeyspace(info),
  };
}
