import { createHash, randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

export const BIG_VALUE_BYTES = 24 * 1024 * 1024;
export const BINARY_KEY = Buffer.from([0xff, 0x00, 0xfe, 0x0d, 0x0a, 0x80, 0x2a, 0x24]);
export const BINARY_VALUE = Buffer.from([0xc3, 0x28, 0x0d, 0x0a, 0x00, 0xff, 0x24, 0x2a, 0x0a]);
export const FIXTURE_DATABASES = [0, 1, 5];

/**
 * Every type Scholaria (and Celery) may have in Redis, in several databases: strings (raw, int,
 * binary, 24 MB), lists, sets, sorted sets and hashes in both compact and large encodings,
 * streams with consumer groups and pending entries, HyperLogLog, bitmaps, geo; keys with and
 * without TTL; binary non-UTF-8 keys and values.
 */
export async function loadFixture(url: string, options: { big?: boolean } = {}): Promise<void> {
  const r = new Redis(url, { lazyConnect: true });
  await r.connect();
  try {
    await r.select(0);
    const p = r.pipeline();
    p.set('str:plain', 'hello world');
    p.set('str:int', '1234567');
    p.set('str:ttl', 'expires later', 'PX', 3_600_000);
    p.set(BINARY_KEY, BINARY_VALUE);
    p.set(Buffer.concat([Buffer.from('bin:'), randomBytes(32)]), randomBytes(300), 'PX', 7_200_000);
    p.rpush('list:small', 'a', 'b', 'c');
    p.rpush('list:big', ...Array.from({ length: 2000 }, (_, i) => `item-${i}-${'x'.repeat(i % 50)}`));
    p.sadd('set:int', 1, 2, 3, 42);
    p.sadd('set:small', 'x', 'y', 'z');
    p.sadd('set:big', ...Array.from({ length: 1500 }, (_, i) => `member-${i}`));
    p.zadd('zset:small', 1, 'one', 2, 'two', 3.5, 'three and a half');
    p.zadd('zset:big', ...Array.from({ length: 1000 }, (_, i) => [i * 1.5, `m${i}`]).flat());
    p.hset('hash:small', { field: 'value', n: '1' });
    p.hset('hash:big', Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`f${i}`, `v${i}`])));
    p.hset('hash:ttl', { session: 'abc' });
    p.pexpire('hash:ttl', 1_800_000);
    p.pfadd('hll:visitors', ...Array.from({ length: 5000 }, (_, i) => `visitor-${i}`));
    p.setbit('bitmap:active', 100_000, 1);
    p.setbit('bitmap:active', 7, 1);
    p.geoadd('geo:cities', 126.978, 37.5665, 'seoul', 129.0756, 35.1796, 'busan', 2.3522, 48.8566, 'paris');
    for (let i = 0; i < 50; i++) p.xadd('stream:tasks', '*', 'task', `t${i}`, 'payload', 'p'.repeat(i));
    p.xgroup('CREATE', 'stream:tasks', 'workers', '0');
    p.xgroup('CREATE', 'stream:tasks', 'auditors', '$');
    p.xreadgroup('GROUP', 'workers', 'alice', 'COUNT', 10, 'STREAMS', 'stream:tasks', '>');
    p.xreadgroup('GROUP', 'workers', 'bob', 'COUNT', 5, 'STREAMS', 'stream:tasks', '>');
    for (let i = 0; i < 30; i++) p.set(`session:${i}`, JSON.stringify({ user: i }), 'PX', 600_000 + i * 1000);
    for (let i = 0; i < 30; i++) p.set(`cache:${i}`, `v${i}`);
    await p.exec();
    if (options.big !== false) await r.set('big:value', randomBytes(BIG_VALUE_BYTES));
    // Celery-like queue in another database.
    await r.select(1);
    await r.lpush('celery', ...Array.from({ length: 100 }, (_, i) => JSON.stringify({ id: i, task: 'embed' })));
    await r.set(BINARY_KEY, 'same binary key, other db', 'PX', 900_000);
    await r.hset('unacked', 'tag1', 'x', 'tag2', 'y');
    await r.select(5);
    await r.set('only-in-5', '5');
    await r.sadd('set:5', 'a', 'b');
  } finally {
    r.disconnect();
  }
}

export interface KeyFingerprint {
  type: string;
  encoding: string;
  /** sha256 of the DUMP payload, or of the sorted content where the encoding's order is not stable. */
  digest: string;
  /** Absolute expiry in ms, -1 without TTL. */
  expireAt: number;
}

/**
 * The content of every key of the given databases. DUMP payloads are compared byte for byte,
 * except for hashtable-encoded sets and hashes: Redis re-inserts their members on RESTORE,
 * which reverses the order inside hash buckets, so even DUMP -> RESTORE -> DUMP on one server
 * gives different bytes; for those the sorted members are compared instead.
 */
export async function fingerprint(url: string, databases: number[]): Promise<Record<string, Record<string, KeyFingerprint>>> {
  const r = new Redis(url, { lazyConnect: true });
  await r.connect();
  const out: Record<string, Record<string, KeyFingerprint>> = {};
  try {
    for (const db of databases) {
      await r.select(db);
      const keys: Buffer[] = [];
      let cursor = '0';
      do {
        const [next, found] = await r.scanBuffer(cursor, 'COUNT', 1000);
        cursor = next.toString();
        keys.push(...found);
      } while (cursor !== '0');
      const entries: Record<string, KeyFingerprint> = {};
      for (const key of keys) {
        const type = await r.type(key);
        const encoding = String(await r.call('OBJECT', 'ENCODING', key));
        const expireAt = Number(await r.call('PEXPIRETIME', key));
        let digest: string;
        if (encoding === 'hashtable' && type === 'set') {
          digest = sha((await r.smembersBuffer(key)).map((b) => b.toString('hex')).sort().join(','));
        } else if (encoding === 'hashtable' && type === 'hash') {
          const all = await r.hgetallBuffer(key);
          digest = sha(Object.entries(all).map(([f, v]) => `${Buffer.from(f).toString('hex')}=${v.toString('hex')}`).sort().join(','));
        } else {
          digest = sha((await r.dumpBuffer(key))!);
        }
        entries[key.toString('hex')] = { type, encoding, digest, expireAt };
      }
      out[String(db)] = entries;
    }
  } finally {
    r.disconnect();
  }
  return out;
}

function sha(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Same keys and content; expiries equal within `toleranceMs`. */
export function compareFingerprints(
  before: Record<string, Record<string, KeyFingerprint>>,
  after: Record<string, Record<string, KeyFingerprint>>,
  toleranceMs = 1000,
): string[] {
  const problems: string[] = [];
  for (const db of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const b = before[db] ?? {};
    const a = after[db] ?? {};
    for (const key of new Set([...Object.keys(b), ...Object.keys(a)])) {
      const x = b[key];
      const y = a[key];
      if (!x || !y) {
        problems.push(`db${db} key ${key}: ${x ? 'missing after restore' : 'unexpected after restore'}`);
        continue;
      }
      if (x.type !== y.type || x.encoding !== y.encoding || x.digest !== y.digest) problems.push(`db${db} key ${key}: content differs`);
      if ((x.expireAt < 0) !== (y.expireAt < 0) || Math.abs(x.expireAt - y.expireAt) > toleranceMs) {
        problems.push(`db${db} key ${key}: expiry ${x.expireAt} vs ${y.expireAt}`);
      }
    }
  }
  return problems;
}
