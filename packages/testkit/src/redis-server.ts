import { spawn, type ChildProcess } from 'node:child_process';
import { copyFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { getFreePort } from './free-port.js';
import { registerCleanup } from './cleanup.js';
import { makeTempDir } from './temp-dir.js';

export interface StartRedisOptions {
  /** Password of the `default` user (`--requirepass`). */
  password?: string;
  /**
   * Raw `ACL SETUSER` rules, one user per string, e.g. `'backup on >secret ~* &* +@all -sync -psync'`.
   * Applied after start (and again after `restart()`), so passwords never appear in argv.
   */
  aclUsers?: string[];
  /** Extra `redis-server` arguments, e.g. `['--databases', '32']` or `['--save', '60 1']`. */
  args?: string[];
  /** An RDB file copied into the server's dir as `dump.rdb` before start, so the server loads it. */
  rdbFile?: string;
  /** How long to wait for PING to answer, default 20 s. */
  startTimeoutMs?: number;
}

export interface RedisServer {
  host: '127.0.0.1';
  port: number;
  password?: string;
  /** `redis://:password@127.0.0.1:port/db` (password URL-encoded). */
  url(db?: number): string;
  /** The server's working directory (where `dump.rdb` lands when persistence is asked for). */
  dir: string;
  /** Full path of the redis-server log file, useful when a test fails. */
  logFile: string;
  /** Sends one command on a fresh connection (authenticated as `default`) and returns the reply. */
  command(...args: (string | Buffer)[]): Promise<RedisReply>;
  stop(): Promise<void>;
  /** Stops and starts the server again on the same port and dir (ACL users are re-applied). */
  restart(): Promise<void>;
}

export type RedisReply = string | number | Buffer | null | RedisReply[] | RedisReplyError;

export class RedisReplyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RedisReplyError';
  }
}

/**
 * Starts the system `redis-server` on a random loopback port in a temp dir. Persistence is off
 * (`--save ''`, no AOF) unless `args` asks for it. The process and dir are removed at process
 * exit even when a test fails before `stop()`.
 */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const killSync = () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  // Registered before the temp dir so that at exit the server is killed before its dir goes.
  const unregister = registerCleanup(killSync);

  let temp: Awaited<ReturnType<typeof makeTempDir>>;
  try {
    temp = await makeTempDir('scholaria-redis-');
  } catch (error) {
    unregister();
    throw error;
  }
  const dir = temp.path;
  const port = await getFreePort();
  const logFile = join(dir, 'redis.log');

  const args = [
    '--bind',
    '127.0.0.1',
    '--port',
    String(port),
    '--dir',
    dir,
    '--dbfilename',
    'dump.rdb',
    '--save',
    '',
    '--appendonly',
    'no',
    '--daemonize',
    'no',
    '--logfile',
    logFile,
    '--protected-mode',
    'no',
    ...(options.args ?? []),
  ];


  const launch = async () => {
    const proc = spawn('redis-server', args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env },
    });
    child = proc;
    let output = '';
    const collect = (b: Buffer) => {
      output = (output + b.toString()).slice(-4000);
    };
    proc.stdout?.on('data', collect);
    proc.stderr?.on('data', collect);
    let exitInfo: string | undefined;
    exited = new Promise<void>((resolve) => {
      proc.once('exit', (code, signal) => {
        exitInfo = `exit code ${code ?? 'none'} signal ${signal ?? 'none'}`;
        resolve();
      });
      proc.once('error', (error) => {
        exitInfo = error.message;
        resolve();
      });
    });
    // `requirepass` through a config line on stdin would be nicer, but redis-server only reads
    // a config file path; the password lives in the test process anyway, so set it by command.
    const deadline = Date.now() + (options.startTimeoutMs ?? 20_000);
    for (;;) {
      if (exitInfo) {
        throw new Error(`redis-server exited during start (${exitInfo}): ${output.trim() || '(no output, see ' + logFile + ')'}`);
      }
      try {
        const reply = await sendCommand(port, undefined, ['PING']);
        if (reply === 'PONG' || reply instanceof RedisReplyError) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        killSync();
        throw new Error(`redis-server on port ${port} did not answer PING within ${options.startTimeoutMs ?? 20_000} ms`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    if (options.password) {
      const r = await sendCommand(port, undefined, ['CONFIG', 'SET', 'requirepass', options.password]);
      if (r instanceof RedisReplyError) throw r;
    }
    for (const rules of options.aclUsers ?? []) {
      const parts = rules.trim().split(/\s+/);
      const r = await sendCommand(port, options.password, ['ACL', 'SETUSER', ...parts]);
      if (r instanceof RedisReplyError) throw new Error(`ACL SETUSER ${parts[0]} failed: ${r.message}`);
    }
  };

  const halt = async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(killSync, 5_000);
      await exited;
      clearTimeout(timer);
    }
  };

  try {
    if (options.rdbFile) await copyFile(options.rdbFile, join(dir, 'dump.rdb'));
    await launch();
  } catch (error) {
    killSync();
    unregister();
    await temp.remove();
    throw error;
  }

  let stopped = false;
  const server: RedisServer = {
    host: '127.0.0.1',
    port,
    ...(options.password ? { password: options.password } : {}),
    dir,
    logFile,
    url(db?: number) {
      const auth = options.password ? `:${encodeURIComponent(options.password)}@` : '';
      return `redis://${auth}127.0.0.1:${port}${db === undefined ? '' : `/${db}`}`;
    },
    command(...cmd) {
      return sendCommand(port, options.password, cmd);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await halt();
      unregister();
      await temp.remove();
    },
    async restart() {
      if (stopped) throw new Error('redis server already stopped');
      await halt();
      await launch();
    },
  };
  return server;
}

/** One command on a fresh connection: enough for setup code that must not depend on a client library. */
async function sendCommand(port: number, password: string | undefined, args: (string | Buffer)[]): Promise<RedisReply> {
  const commands = password ? [['AUTH', password], args] : [args];
  return await new Promise<RedisReply>((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let buffer = Buffer.alloc(0);
    const replies: RedisReply[] = [];
    socket.setTimeout(10_000, () => socket.destroy(new Error('redis command timed out')));
    socket.on('error', reject);
    socket.on('connect', () => {
      socket.write(Buffer.concat(commands.map(encodeCommand)));
    });
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const parsed = parseReply(buffer, 0);
        if (!parsed) break;
        replies.push(parsed.value);
        buffer = buffer.subarray(parsed.end);
        if (replies.length === commands.length) {
          socket.end();
          const auth = password ? replies[0] : undefined;
          if (auth instanceof RedisReplyError) resolve(auth);
          else resolve(replies[replies.length - 1] as RedisReply);
          return;
        }
      }
    });
    socket.on('close', () => {
      if (replies.length < commands.length) reject(new Error('connection closed before the reply'));
    });
  });
}

function encodeCommand(args: (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a) : a;
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

function parseReply(buf: Buffer, start: number): { value: RedisReply; end: number } | undefined {
  const lineEnd = buf.indexOf('\r\n', start);
  if (lineEnd < 0) return undefined;
  const type = String.fromCharCode(buf[start] ?? 0);
  const line = buf.toString('utf8', start + 1, lineEnd);
  const next = lineEnd + 2;
  switch (type) {
    case '+':
      return { value: line, end: next };
    case '-':
      return { value: new RedisReplyError(line), end: next };
    case ':':
      return { value: Number(line), end: next };
    case '$': {
      const len = Number(line);
      if (len < 0) return { value: null, end: next };
      if (buf.length < next + len + 2) return undefined;
      return { value: buf.subarray(next, next + len), end: next + len + 2 };
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return { value: null, end: next };
      const items: RedisReply[] = [];
      let pos = next;
      for (let i = 0; i < n; i++) {
        const item = parseReply(buf, pos);
        if (!item) return undefined;
        items.push(item.value);
        pos = item.end;
      }
      return { value: items, end: pos };
    }
    default:
      throw new Error(`unexpected RESP type byte ${JSON.stringify(type)}`);
  }
}
