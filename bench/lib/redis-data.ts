import { prng } from './pg-data.js';

/**
 * RESP commands for `redis-cli --pipe`: a Scholaria-like keyspace of mixed types (cached
 * answers, session hashes, Celery-style queue lists, sets, sorted sets, expiring tokens),
 * about a third of the keys with a TTL.
 */
export function* redisLoadCommands(from: number, to: number, seed = 7): Generator<Buffer> {
  const random = prng(seed + from);
  const parts: Buffer[] = [];
  let pending = 0;
  const cmd = (...args: string[]) => {
    let s = `*${args.length}\r\n`;
    for (const a of args) s += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
    parts.push(Buffer.from(s));
    pending += s.length;
  };
  const text = (n: number) => {
    let s = '';
    while (s.length < n) s += (random() * 1e9).toString(36).replace('.', '') + ' ';
    return s.slice(0, n);
  };
  for (let i = from; i < to; i++) {
    const kind = i % 10;
    if (kind < 4) {
      const key = `cache:answer:${i}`;
      cmd('SET', key, `{"answer":"${text(64 + Math.floor(random() * 400))}","sources":[${i % 97},${i % 89}]}`);
      if (i % 3 === 0) cmd('PEXPIRE', key, String(3_600_000 + (i % 1000) * 1000));
    } else if (kind < 6) {
      const key = `session:${i}`;
      cmd('HSET', key, 'user_id', String(i % 5000), 'csrf', text(32), 'created', String(1_760_000_000 + i), 'ua', 'Mozilla/5.0 (X11; Linux x86_64)', 'topic', String(i % 800));
      cmd('PEXPIRE', key, String(86_400_000));
    } else if (kind === 6) {
      const key = `celery:queue:${i}`;
      const items = ['RPUSH', key];
      const n = 3 + (i % 8);
      for (let j = 0; j < n; j++) items.push(`{"id":"${i}-${j}","task":"embed_chunk","args":[${i},${j}]}`);
      cmd(...items);
    } else if (kind === 7) {
      const key = `topic:members:${i}`;
      const items = ['SADD', key];
      for (let j = 0; j < 5 + (i % 6); j++) items.push(String((i * 31 + j * 7) % 10_000));
      cmd(...items);
    } else if (kind === 8) {
      const key = `ratelimit:${i}`;
      const items = ['ZADD', key];
      for (let j = 0; j < 4 + (i % 5); j++) items.push(String(1_760_000_000 + j * 13), `req-${i}-${j}`);
      cmd(...items);
    } else {
      cmd('SET', `token:${i}`, text(40), 'PX', String(900_000 + (i % 100) * 1000));
    }
    if (pending > 1 << 20) {
      yield Buffer.concat(parts);
      parts.length = 0;
      pending = 0;
    }
  }
  if (parts.length) yield Buffer.concat(parts);
}
