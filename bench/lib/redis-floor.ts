import { connect } from 'node:net';

/**
 * The least a DUMP-based backup can ask of Redis: SCAN with the logical mode's COUNT, and
 * DUMP + PEXPIRETIME of every key it returns, pipelined with the next SCAN as the library
 * does; replies are parsed only as far as needed to find the cursor and keys, and discarded.
 * The bench reads the server's CPU over this run (issue 22: "the Redis server's own CPU floor").
 */
export async function redisCpuFloor(url: string, scanCount = 2000): Promise<{ keys: number; bytes: number }> {
  const u = new URL(url);
  const socket = connect({ host: u.hostname, port: Number(u.port || 6379) });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.setNoDelay(true);
  const cmd = (...args: (string | Buffer)[]): Buffer => {
    const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
    for (const a of args) {
      const b = typeof a === 'string' ? Buffer.from(a) : a;
      parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
    }
    return Buffer.concat(parts);
  };
  let buf: Buffer = Buffer.alloc(0);
  let pos = 0;
  let waiting: (() => void) | undefined;
  let failed: Error | undefined;
  socket.on('data', (d: Buffer) => {
    buf = pos < buf.length ? Buffer.concat([buf.subarray(pos), d]) : d;
    pos = 0;
    waiting?.();
  });
  socket.on('error', (e) => {
    failed = e;
    waiting?.();
  });
  const INCOMPLETE = Symbol('incomplete');
  type Value = Buffer | string | number | null | Value[];
  const one = (): Value | typeof INCOMPLETE => {
    if (pos >= buf.length) return INCOMPLETE;
    const end = buf.indexOf('\r\n', pos);
    if (end < 0) return INCOMPLETE;
    const type = buf[pos]!;
    const line = buf.toString('latin1', pos + 1, end);
    if (type === 0x2d) throw new Error(`redis: ${line}`);
    if (type === 0x2b || type === 0x3a) {
      pos = end + 2;
      return type === 0x3a ? Number(line) : line;
    }
    if (type === 0x24) {
      const n = Number(line);
      if (n < 0) {
        pos = end + 2;
        return null;
      }
      if (end + 4 + n > buf.length) return INCOMPLETE;
      const v = buf.subarray(end + 2, end + 2 + n);
      pos = end + 4 + n;
      return v;
    }
    if (type === 0x2a) {
      const n = Number(line);
      pos = end + 2;
      const out: Value[] = [];
      for (let i = 0; i < n; i++) {
        const x = one();
        if (x === INCOMPLETE) return INCOMPLETE;
        out.push(x);
      }
      return out;
    }
    throw new Error(`unexpected RESP type ${String.fromCharCode(type)}`);
  };
  const reply = async (): Promise<Value> => {
    for (;;) {
      if (failed) throw failed;
      const start = pos;
      const v = one();
      if (v !== INCOMPLETE) return v;
      pos = start;
      await new Promise<void>((r) => (waiting = r));
      waiting = undefined;
    }
  };
  let cursor = '0';
  let keys: Buffer[] = [];
  let total = 0;
  let bytes = 0;
  let first = true;
  try {
    while (first || cursor !== '0' || keys.length) {
      const scanning = first || cursor !== '0';
      const out: Buffer[] = [];
      if (scanning) out.push(cmd('SCAN', cursor, 'COUNT', String(scanCount)));
      for (const k of keys) out.push(cmd('DUMP', k), cmd('PEXPIRETIME', k));
      socket.write(Buffer.concat(out));
      first = false;
      let next: Buffer[] = [];
      if (scanning) {
        const [c, list] = (await reply()) as [Buffer, Buffer[]];
        cursor = c.toString();
        next = list;
      }
      for (let i = 0; i < keys.length; i++) {
        const dump = await reply();
        if (Buffer.isBuffer(dump)) bytes += dump.length;
        await reply();
      }
      total += keys.length;
      keys = next;
    }
  } finally {
    socket.destroy();
  }
  return { keys: total, bytes };
}
