// Security checks after full runs with distinctive secrets: no secret in any log file, CLI
// output, error, notification (webhook and email), manifest, SHA256SUMS, audit line, lock or
// artifact, nor in the argv of any process on the machine while pg_dump/pg_restore run; fs
// files 0600 and folders 0700; names with quotes, spaces, $() and ; never reach a shell.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, createBackupEngine, type BackupEngine } from '@scholaria/backup-core';
import { runCli } from '@scholaria/backup-cli';
import { createFsStorage } from '@scholaria/backup-fs';
import { createPostgresSource } from '@scholaria/backup-postgres';
import { createQdrantSource } from '@scholaria/backup-qdrant';
import { createRedisSource } from '@scholaria/backup-redis';
import { createSlackNotifier } from '@scholaria/backup-slack';
import {
  makeTempDir,
  startHttpCapture,
  startPostgres,
  startQdrantSimulator,
  startRedis,
  startSmtp,
  type HttpCapture,
  type PostgresServer,
  type QdrantSimulator,
  type RedisServer,
  type SmtpServerHandle,
  type TempDir,
} from '@scholaria/backup-testkit';
import { captureLogger, walk } from './helpers/common.js';
import { pgDigest, quoteIdent, redisDigest, seedPostgres, seedRedis } from './helpers/live-data.js';
import { watchProcesses, type SeenProcess } from './helpers/proc-watch.js';

const SECRETS = {
  'database password': 'PgPw-Zebra-7741-xq',
  'wrong database password': 'PgWrong-Crow-1234-xq',
  'redis password': 'RedisPw-Yak-5512-xq',
  'qdrant api key': 'QdrantKey-Gnu-3390-xq',
  'webhook token': 'WebhookTok-Owl-2281-xq',
  'slack webhook token': 'SlackTok-Elk-4471-xq',
  'smtp password': 'SmtpPw-Lynx-9902-xq',
} as const;

let pg: PostgresServer;
let redis: RedisServer;
let qdrant: QdrantSimulator;
let smtp: SmtpServerHandle;
let hooks: HttpCapture;
let dir: TempDir;

async function qdrantRequest(method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${qdrant.url}${path}`, {
    method,
    headers: { 'api-key': SECRETS['qdrant api key'], 'content-type': 'application/json' },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const json = (await res.json()) as { result?: unknown; status?: unknown };
  if (!res.ok) throw new Error(`qdrant ${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json.result;
}

async function seedCollection(name: string, points: number): Promise<void> {
  await qdrantRequest('PUT', `/collections/${encodeURIComponent(name)}`, { vectors: { size: 4, distance: 'Cosine' } });
  await qdrantRequest('PUT', `/collections/${encodeURIComponent(name)}/points?wait=true`, {
    points: Array.from({ length: points }, (_, i) => ({ id: i + 1, vector: [1, i, 2, 3], payload: { title: `doc ${i}` } })),
  });
}

beforeAll(async () => {
  dir = await makeTempDir('faults-security-');
  [pg, redis, qdrant, smtp, hooks] = await Promise.all([
    startPostgres({ superuserPassword: SECRETS['database password'] }),
    startRedis({ password: SECRETS['redis password'] }),
    startQdrantSimulator({ apiKey: SECRETS['qdrant api key'] }),
    startSmtp({ auth: { user: 'backup', pass: SECRETS['smtp password'] } }),
    startHttpCapture(),
  ]);
  await pg.createDatabase('app');
  await seedPostgres(pg, 'app', 30_000);
  await seedRedis(redis, 2000);
  await seedCollection('docs', 20);
});

afterAll(async () => {
  await Promise.all([pg?.stop(), redis?.stop(), qdrant?.stop(), smtp?.stop(), hooks?.stop()]);
  await dir?.remove();
});

/** Shells started by this process itself, or by anything that is not a PostgreSQL tool. */
function shells(children: SeenProcess[]): string[] {
  const byPid = new Map(children.map((c) => [c.pid, c]));
  return children
    .filter((c) => /^(sh|bash|dash|zsh)$/.test(c.comm))
    .filter((c) => c.ppid === process.pid || !/^pg_/.test(byPid.get(c.ppid)?.comm ?? ''))
    .map((c) => `${c.cmdline.join(' ')} (parent ${byPid.get(c.ppid)?.comm ?? c.ppid})`);
}

function findSecrets(where: string, text: string, found: string[]): void {
  for (const [what, secret] of Object.entries(SECRETS)) {
    for (const form of new Set([secret, encodeURIComponent(secret), Buffer.from(secret).toString('base64')])) {
      if (text.includes(form)) found.push(`${what} in ${where}`);
    }
  }
}

/** Every file under `root` as text; zstd artifacts decompressed so a compressed secret cannot hide. */
async function filesAsText(root: string): Promise<{ path: string; text: string }[]> {
  const out: { path: string; text: string }[] = [];
  if (!existsSync(root)) return out;
  for (const entry of await walk(root)) {
    if (entry.isDir) continue;
    const raw = await readFile(entry.path);
    out.push({ path: entry.path, text: raw.toString('latin1') });
    if (entry.path.endsWith('.zst')) {
      const plain = spawnSync('zstd', ['-dc', entry.path], { maxBuffer: 256 * 1024 * 1024 });
      out.push({ path: `${entry.path} (decompressed)`, text: plain.stdout.toString('latin1') });
    }
  }
  return out;
}

describe('no secret anywhere after a full run', () => {
  it('CLI backup, list, verify, restore (dry run and real), prune, health-check, audit and a failing backup: no secret in logs, output, notifications, set files or argv', async () => {
    const root = join(dir.path, 'backup');
    const logDir = join(dir.path, 'logs');
    const env = {
      BACKUP_DIR: root,
      BACKUP_LOG_DIR: logDir,
      DATABASE_URL: pg.url('app'),
      REDIS_URL: redis.url(),
      QDRANT_URL: qdrant.url,
      QDRANT_API_KEY: SECRETS['qdrant api key'],
      BACKUP_NOTIFY_WEBHOOK: `${hooks.url}/hooks/${SECRETS['webhook token']}`,
      BACKUP_NOTIFY_EMAIL: 'ops@example.com',
      BACKUP_NOTIFY_ON: 'all',
      SMTP_URL: `smtp://backup:${SECRETS['smtp password']}@127.0.0.1:${smtp.port}`,
    };
    const outputs: string[] = [];
    const cli = async (args: string[], extra: Record<string, string> = {}) => {
      let text = '';
      const sink = new PassThrough().on('data', (d: Buffer) => (text += d.toString()));
      const code = await runCli(args, { stdout: sink, stderr: sink, stdin: Readable.from([]), env: { ...env, ...extra }, cwd: dir.path, isTTY: false });
      outputs.push(`$ ${args.join(' ')} -> ${code}\n${text}`);
      return { code, text };
    };
    const liveBefore = { pg: await pgDigest(pg, 'app'), redis: await redisDigest(redis) };
    const watch = watchProcesses({ envOf: /^pg_(dump|restore)$/ });
    try {
      expect((await cli(['backup', '--tier', 'daily'])).code).toBe(0);
      expect((await cli(['list'])).code).toBe(0);
      expect((await cli(['verify', 'latest'])).code).toBe(0);
      expect((await cli(['restore', 'latest', '--dry-run'])).code).toBe(0);
      const restored = await cli(['restore', 'latest', '--yes']);
      expect(restored.code, restored.text).toBe(0);
      expect((await cli(['prune'])).code).toBe(0);
      await cli(['health-check']);
      expect((await cli(['audit'])).code).toBe(0);
      expect((await cli(['audit', 'verify'])).code).toBe(0);
      // A failing run: the database refuses a wrong password; that password must not leak either.
      const wrong = await cli(['backup'], { DATABASE_URL: pg.url('app').replace(encodeURIComponent(SECRETS['database password']), SECRETS['wrong database password']) });
      expect(wrong.code).toBe(3);
      expect(wrong.text).toMatch(/postgres.*authentication failed/);
    } finally {
      watch.stop();
    }
    expect(await pgDigest(pg, 'app')).toBe(liveBefore.pg);
    expect(await redisDigest(redis)).toBe(liveBefore.redis);

    // The checks below only mean something if the runs really produced all of this.
    await smtp.waitForMessages(1);
    await hooks.waitForRequests(1);
    const children = watch.children();
    const tools = children.filter((c) => /^pg_(dump|restore)$/.test(c.comm));
    expect(children.some((c) => c.comm === 'pg_dump'), children.map((c) => c.comm).join(',')).toBe(true);
    expect(children.some((c) => c.comm === 'pg_restore')).toBe(true);
    // The password travels in the environment of the tools, never in their argv.
    expect(tools.some((t) => t.env?.some((e) => e === `PGPASSWORD=${SECRETS['database password']}`))).toBe(true);
    // The library never starts a shell: every tool is spawned with an argument array. (PostgreSQL's
    // own tools run `sh -c '"<bindir>/pg_dump" -V'` to check a sibling's version: not ours, no data.)
    expect(shells(children)).toEqual([]);

    const found: string[] = [];
    for (const cmdline of watch.allCommandLines()) findSecrets(`argv of ${cmdline.slice(0, 2).join(' ')}`, cmdline.join(' '), found);
    for (const out of outputs) findSecrets(`CLI output of ${out.split('\n')[0]}`, out, found);
    const logFiles = await filesAsText(logDir);
    expect(logFiles.length).toBeGreaterThan(0);
    for (const f of logFiles) findSecrets(`log file ${f.path}`, f.text, found);
    const setFiles = await filesAsText(root);
    expect(setFiles.some((f) => f.path.endsWith('manifest.json'))).toBe(true);
    expect(setFiles.some((f) => f.path.includes('/audit/'))).toBe(true);
    for (const f of setFiles) findSecrets(`backup file ${f.path}`, f.text, found);
    for (const r of hooks.requests) findSecrets(`webhook body/headers ${r.method}`, `${r.body.toString()} ${JSON.stringify(r.headers)}`, found);
    for (const m of smtp.messages) findSecrets(`email "${m.subject}"`, `${m.subject} ${m.text} ${m.html || ''} ${JSON.stringify([...m.headers])}`, found);
    expect(found).toEqual([]);

    // fs storage permissions: files 0600, folders 0700, the root included.
    const entries = [{ path: root, mode: (await import('node:fs')).statSync(root).mode & 0o777, isDir: true }, ...(await walk(root))];
    expect(entries.filter((e) => e.mode !== (e.isDir ? 0o700 : 0o600)).map((e) => `${e.path} ${e.mode.toString(8)}`)).toEqual([]);
  });

  it('library run with a Slack notifier and a failing component: no token or password in events, errors, results or logs', async () => {
    const logger = captureLogger();
    const events: string[] = [];
    const engine: BackupEngine = createBackupEngine({
      sources: [
        createRedisSource({ url: redis.url() }),
        createPostgresSource({ url: pg.url('app').replace(encodeURIComponent(SECRETS['database password']), SECRETS['wrong database password']) }),
        createQdrantSource({ url: qdrant.url, apiKey: SECRETS['qdrant api key'] }),
      ],
      storage: createFsStorage({ root: join(dir.path, 'library') }),
      notifiers: [createSlackNotifier({ webhookUrl: `${hooks.url}/services/T000/B000/${SECRETS['slack webhook token']}`, on: ['start', 'success', 'partial', 'failure'] })],
      logger,
      onEvent: (e) => events.push(JSON.stringify(e)),
      secrets: [SECRETS['wrong database password']],
    });
    const before = hooks.requests.length;
    const result = await engine.backup({ tier: 'daily' });
    expect(result.status).toBe('partial');
    const restore = await engine.restore({ ref: result.setId, dryRun: true });
    await engine.close();
    await hooks.waitForRequests(before + 2);
    const found: string[] = [];
    findSecrets('log lines', logger.lines.join('\n'), found);
    findSecrets('events', events.join('\n'), found);
    findSecrets('backup result', JSON.stringify(result, (_k, v: unknown) => (v instanceof Error ? { message: v.message, ...(v as object) } : v)), found);
    findSecrets('restore result', JSON.stringify(restore), found);
    for (const r of hooks.requests.slice(before)) findSecrets('slack message', `${r.body.toString()} ${JSON.stringify(r.headers)}`, found);
    expect(found).toEqual([]);
    expect(result.components.find((c) => c.name === 'postgres')!.error!.message).toMatch(/authentication failed/);
  });
});

describe('names with quotes, spaces, $() and ; never reach a shell', () => {
  it('database, collection, target database and Redis key names round-trip; the manual restore commands are quoted; set prefixes with shell characters are refused', async () => {
    const tag = Math.random().toString(36).slice(2, 6);
    const canaries = [`/tmp/pwn-pg-${tag}`, `/tmp/pwn-pg2-${tag}`, `/tmp/pwn-key-${tag}`, `/tmp/pwn-prefix-${tag}`, join(process.cwd(), `pwn-qdrant-${tag}`), join(dir.path, `pwn-qdrant-${tag}`)];
    const weirdDb = `it's "odd" $(touch /tmp/pwn-pg-${tag}); x`;
    const weirdTarget = `copy "of" $(touch /tmp/pwn-pg2-${tag});y`;
    const weirdCollection = `docs 'q' $(touch pwn-qdrant-${tag}); \`id\``;
    const weirdKey = `key "q" $(touch /tmp/pwn-key-${tag}); rm -rf x`;
    expect(Buffer.byteLength(weirdDb)).toBeLessThanOrEqual(63);
    await pg.query('postgres', `CREATE DATABASE ${quoteIdent(weirdDb)}`);
    await seedPostgres(pg, weirdDb, 2000, 'weird');
    const dbDigest = await pgDigest(pg, weirdDb);
    await seedCollection(weirdCollection, 12);
    expect(await redis.command('SET', weirdKey, 'value; $(id)')).toBe('OK');

    const root = join(dir.path, 'weird');
    const engine = createBackupEngine({
      sources: [
        createPostgresSource({ url: pg.url(weirdDb) }),
        createRedisSource({ url: redis.url() }),
        createQdrantSource({ url: qdrant.url, apiKey: SECRETS['qdrant api key'], collections: [weirdCollection] }),
      ],
      storage: createFsStorage({ root }),
    });
    const watch = watchProcesses();
    let setId: string;
    try {
      const result = await engine.backup({ tier: 'daily' });
      expect(result.status, JSON.stringify(result.components.map((c) => c.error?.message))).toBe('complete');
      setId = result.setId;
      await redis.command('DEL', weirdKey);
      const restored = await engine.restore({ ref: setId, componentOptions: { postgres: { mode: 'new-database', targetDatabase: weirdTarget } } });
      expect(restored.status, JSON.stringify(restored.components.map((c) => c.error?.message))).toBe('ok');
    } finally {
      watch.stop();
    }
    expect(await pgDigest(pg, weirdTarget)).toBe(dbDigest);
    expect(await redis.command('GET', weirdKey)).toEqual(Buffer.from('value; $(id)'));
    expect(qdrant.collections().find((c) => c.name === weirdCollection)?.pointsCount).toBe(12);
    // pg_dump got the name inside one argument, quoted as a libpq value.
    const dump = watch.children().find((c) => c.comm === 'pg_dump' && c.cmdline.some((a) => a.startsWith('--dbname=')));
    expect(dump, watch.children().map((c) => c.cmdline.join(' ')).join('\n')).toBeDefined();
    expect(dump!.cmdline.some((a) => a.startsWith('--dbname=') && a.includes(`"odd" $(touch /tmp/pwn-pg-${tag}); x`)), dump!.cmdline.join(' ')).toBe(true);
    expect(shells(watch.children())).toEqual([]);
    const pgShells = watch.children().filter((c) => /^(sh|bash|dash)$/.test(c.comm));
    for (const s of pgShells) expect(s.cmdline.join(' ')).not.toMatch(/pwn|odd|copy/);

    // The manifest's by-hand commands are meant to be pasted into a shell: run each of them with
    // stand-in tools (which only swallow their input) and check no name turned into a command.
    const stubs = join(dir.path, 'stubs');
    await mkdir(stubs, { recursive: true });
    for (const tool of ['zstd', 'gunzip', 'age', 'pg_restore', 'psql', 'redis-cli', 'curl', 'tar', 'cat']) {
      await writeFile(join(stubs, tool), '#!/bin/sh\nexec /bin/cat >/dev/null\n');
      await chmod(join(stubs, tool), 0o755);
    }
    const manifest = await engine.readManifest(setId!);
    const commands = manifest.components.flatMap((c) => c.artifacts.map((a) => a.manualRestore ?? ''));
    expect(commands.length).toBeGreaterThanOrEqual(3);
    for (const command of commands) {
      const r = spawnSync('/bin/sh', ['-c', command], { cwd: join(root, setId!), env: { PATH: stubs, QDRANT_URL: 'http://127.0.0.1:9', DBNAME: 'x', KEY_FILE: '/dev/null' }, encoding: 'utf8' });
      expect(r.error).toBeUndefined();
    }
    await engine.close();

    // A set prefix carrying shell characters is refused before anything runs.
    expect(() =>
      createBackupEngine({ sources: [], storage: createFsStorage({ root }), setPrefix: `x$(touch /tmp/pwn-prefix-${tag});` }),
    ).toThrow(ConfigError);
    for (const c of canaries) expect(existsSync(c), `${c} was created: a name reached a shell`).toBe(false);
    expect((await readdir(root)).filter((n) => n.includes('$('))).toEqual([]);
  });
});
