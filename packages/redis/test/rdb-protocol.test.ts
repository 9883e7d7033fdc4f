import { createServer, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { Crc64 } from '@scholaria/backup-redis';
import { startRdbSnapshot, ReplicationRefusedError } from '../src/rdb-snapshot.js';

/**
 * Chunk boundaries, keep-alive timing and replication bytes after the payload cannot be forced
 * on a real redis-server, so these cases run against a scripted replication master. The real
 * server cases are in rdb-mode.test.ts.
 */
function rdbFile(bodyBytes: number): Buffer {
  const head = Buffer.concat([Buffer.from('REDIS0010'), randomBytes(bodyBytes), Buffer.from([0xff])]);
  return Buffer.concat([head, new Crc64().update(head).digestLE()]);
}

type Script = (socket: Socket, command: string) => void;

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

async function master(script: Script): Promise<number> {
  const server = createServer((socket) => {
    let buffer = '';
    socket.on('error', () => {});
    socket.on('data', (d) => {
      buffer += d.toString('latin1');
      // Requests are small RESP arrays; answer each complete one.
      for (;;) {
        const m = /^\*(\d+)\r\n/.exec(buffer);
        if (!m) return;
        let pos = m[0].length;
        const args: string[] = [];
        for (let i = 0; i < Number(m[1]); i++) {
          const h = /^\$(\d+)\r\n/.exec(buffer.slice(pos));
          if (!h) return;
          pos += h[0].length;
          const len = Number(h[1]);
          if (buffer.length < pos + len + 2) return;
          args.push(buffer.slice(pos, pos + len));
          pos += len + 2;
        }
        buffer = buffer.slice(pos);
        script(socket, args.join(' '));
      }
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as { port: number }).port;
}

async function dribble(socket: Socket, data: Buffer): Promise<void> {
  for (let i = 0; i < data.length; ) {
    const n = 1 + Math.floor(Math.random() * 4000);
    socket.write(data.subarray(i, i + n));
    i += n;
    if (Math.random() < 0.05) await new Promise((r) => setImmediate(r));
  }
}

const settings = () => ({ connectTimeoutMs: 2000, idleTimeoutMs: 5000, signal: new AbortController().signal, target: 'redis://test' });

async function collect(gen: AsyncGenerator<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of gen) parts.push(c);
  return Buffer.concat(parts);
}

describe('replication protocol', () => {
  it('diskless: skips keep-alives, finds the EOF mark across any chunk boundary, ignores what follows it', async () => {
    const rdb = rdbFile(300_000);
    const mark = randomBytes(20).toString('hex');
    const port = await master((socket, cmd) => {
      if (cmd.startsWith('AUTH')) socket.write(cmd === 'AUTH backup s3cret' ? '+OK\r\n' : '-WRONGPASS\r\n');
      else if (cmd.startsWith('REPLCONF')) socket.write('+OK\r\n');
      else if (cmd === 'PSYNC ? -1') {
        void (async () => {
          socket.write(`\n\n+FULLRESYNC ${'a'.repeat(40)} 0\r\n`);
          socket.write('\n\n\n');
          socket.write(`$EOF:${mark}\r\n`);
          await dribble(socket, Buffer.concat([rdb, Buffer.from(mark), Buffer.from('*1\r\n$4\r\nPING\r\n')]));
        })();
      }
    });
    const session = await startRdbSnapshot({ host: '127.0.0.1', port, username: 'backup', password: 's3cret' }, settings());
    expect(session.info.transfer).toBe('diskless');
    const got = await collect(session.payload());
    expect(got.equals(rdb)).toBe(true);
    expect(session.info).toMatchObject({ rdbVersion: 10, checksumVerified: true, bytes: rdb.length, command: 'PSYNC' });
  });

  it('disk: takes exactly the announced length; falls back from PSYNC to SYNC', async () => {
    const rdb = rdbFile(100_000);
    const port = await master((socket, cmd) => {
      if (cmd.startsWith('REPLCONF')) socket.write('-ERR unknown subcommand\r\n');
      else if (cmd === 'PSYNC ? -1') socket.write("-ERR unknown command 'PSYNC'\r\n");
      else if (cmd === 'SYNC') void dribble(socket, Buffer.concat([Buffer.from(`\n\n$${rdb.length}\r\n`), rdb, Buffer.from('*1\r\n$4\r\nPING\r\n')]));
    });
    const session = await startRdbSnapshot({ host: '127.0.0.1', port }, settings());
    expect(session.info).toMatchObject({ transfer: 'disk', size: rdb.length, command: 'SYNC' });
    expect((await collect(session.payload())).equals(rdb)).toBe(true);
  });

  it('passes the payload on in 1 MiB blocks; the CRC spans block boundaries, down to a last block shorter than the CRC', async () => {
    // 2 MiB + 4 bytes: the stored CRC's first 4 bytes end the second block, its last 4 are the third.
    const rdb = rdbFile(2 * 1024 * 1024 + 4 - 18);
    const lastCovered = Buffer.from(rdb);
    lastCovered[rdb.length - 9] = lastCovered[rdb.length - 9]! ^ 0x01;
    const storedCrc = Buffer.from(rdb);
    storedCrc[rdb.length - 1] = storedCrc[rdb.length - 1]! ^ 0x80;
    for (const [payload, ok] of [
      [rdb, true],
      [lastCovered, false],
      [storedCrc, false],
    ] as const) {
      const mark = randomBytes(20).toString('hex');
      const port = await master((socket, cmd) => {
        if (cmd.startsWith('REPLCONF')) socket.write('+OK\r\n');
        else if (cmd === 'PSYNC ? -1') {
          socket.write(`+FULLRESYNC ${'c'.repeat(40)} 0\r\n$EOF:${mark}\r\n`);
          void dribble(socket, Buffer.concat([payload, Buffer.from(mark)]));
        }
      });
      const session = await startRdbSnapshot({ host: '127.0.0.1', port }, settings());
      const sizes: number[] = [];
      const parts: Buffer[] = [];
      const read = (async () => {
        for await (const c of session.payload()) {
          sizes.push(c.length);
          parts.push(c);
        }
      })();
      if (ok) {
        await read;
        expect(Buffer.concat(parts).equals(rdb)).toBe(true);
        expect(sizes).toEqual([1024 * 1024, 1024 * 1024, 4]);
        expect(session.info).toMatchObject({ checksumVerified: true, bytes: rdb.length });
      } else {
        const error = (await read.catch((e: unknown) => e)) as { code?: string; message: string };
        expect(error.code).toBe('SOURCE_FAILED');
        expect(error.message).toMatch(/checksum does not match/);
        expect(session.info.checksumVerified).toBe(false);
      }
    }
  });

  it('a refusal of both PSYNC and SYNC is a ReplicationRefusedError naming both answers', async () => {
    const port = await master((socket, cmd) => {
      if (cmd.startsWith('REPLCONF')) socket.write('+OK\r\n');
      else socket.write(`-NOPERM this user has no permissions to run the '${cmd.split(' ')[0]!.toLowerCase()}' command\r\n`);
    });
    const error = await startRdbSnapshot({ host: '127.0.0.1', port }, settings()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ReplicationRefusedError);
    expect(String((error as Error).message)).toMatch(/PSYNC refused \(NOPERM.*SYNC refused \(NOPERM/);
  });

  it('a wrong password is AUTH_FAILED, not a refusal', async () => {
    const port = await master((socket, cmd) => {
      if (cmd.startsWith('AUTH')) socket.write('-WRONGPASS invalid username-password pair or user is disabled.\r\n');
    });
    const error = (await startRdbSnapshot({ host: '127.0.0.1', port, password: 'nope-secret' }, settings()).catch((e: unknown) => e)) as {
      code?: string;
      message: string;
    };
    expect(error.code).toBe('AUTH_FAILED');
    expect(error.message).not.toContain('nope-secret');
  });

  it('a corrupted payload fails on its CRC-64; a truncated one fails on the length', async () => {
    const rdb = rdbFile(50_000);
    const bad = Buffer.from(rdb);
    bad[1000] = bad[1000]! ^ 0xff;
    for (const [payload, announced, pattern] of [
      [bad, bad.length, /checksum does not match/],
      [rdb.subarray(0, 30_000), rdb.length, /still to come/],
    ] as const) {
      const port = await master((socket, cmd) => {
        if (cmd.startsWith('REPLCONF')) socket.write('+OK\r\n');
        else if (cmd === 'PSYNC ? -1') {
          socket.write(`+FULLRESYNC ${'b'.repeat(40)} 0\r\n$${announced}\r\n`);
          socket.end(payload);
        }
      });
      const session = await startRdbSnapshot({ host: '127.0.0.1', port }, settings());
      const error = (await collect(session.payload()).catch((e: unknown) => e)) as { code?: string; message: string };
      expect(error.code).toBe('SOURCE_FAILED');
      expect(error.message).toMatch(pattern);
    }
  });
});
