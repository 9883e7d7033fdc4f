// Malformed input, one test per input: a clear error naming what is wrong, the documented exit
// code (through `scholaria-backup` via runCli where the input reaches the CLI, else the library
// error code mapped by the CLI's exitCodeForError), and nothing written: the backup folder, the
// live Redis data and (for configuration errors) the log folder are unchanged.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackupError, createScheduler, createBackupEngine, type BackupEngine } from '@scholaria/backup-core';
import { createAgeCodec, generateAgeIdentity } from '@scholaria/backup-age';
import { EXIT, exitCodeForError, runCli } from '@scholaria/backup-cli';
import { createFsStorage } from '@scholaria/backup-fs';
import { createPostgresSource } from '@scholaria/backup-postgres';
import { createRedisSource } from '@scholaria/backup-redis';
import { createS3Storage } from '@scholaria/backup-s3';
import { makeTempDir, startRedis, type RedisServer, type TempDir } from '@scholaria/backup-testkit';
import { redisDigest, seedRedis } from './helpers/live-data.js';

let redis: RedisServer;
let dir: TempDir;
let root: string;
let logDir: string;
let goodSet: string;
let liveDigest: string;
const canary = () => join(dir.path, 'canary-was-created');

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(args: string[], env: Record<string, string> = {}, cwd = dir.path): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const out = new PassThrough().on('data', (d: Buffer) => (stdout += d.toString()));
  const err = new PassThrough().on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await runCli(args, {
    stdout: out,
    stderr: err,
    stdin: Readable.from([]),
    env: { BACKUP_DIR: root, BACKUP_LOG_DIR: logDir, REDIS_URL: redis.url(), ...env },
    cwd,
    isTTY: false,
  });
  return { code, stdout, stderr };
}

/** Paths, sizes and content hashes of everything under `path` (except the audit log, which records attempts). */
async function snapshot(path: string, skipAudit = true): Promise<string[]> {
  if (!existsSync(path)) return [];
  const out: string[] = [];
  for (const entry of await readdir(path, { recursive: true })) {
    const full = join(path, String(entry));
    const rel = relative(path, full);
    if (skipAudit && rel.startsWith('.scholaria-backup/audit')) continue;
    const s = await stat(full);
    out.push(s.isDirectory() ? `${rel}/` : `${rel} ${s.size} ${createHash('sha256').update(await readFile(full)).digest('hex').slice(0, 16)}`);
  }
  return out.sort();
}

/** A copy of the good set under a new id, with `change` applied to its files. */
let copies = 0;
async function brokenCopy(change: (setDir: string, id: string) => Promise<void>): Promise<string> {
  const id = `scholaria_backup_20250101_${String(100000 + ++copies)}`;
  const setDir = join(root, id);
  await cp(join(root, goodSet), setDir, { recursive: true });
  const manifestPath = join(setDir, 'manifest.json');
  await writeFile(manifestPath, (await readFile(manifestPath, 'utf8')).replaceAll(goodSet, id));
  await change(setDir, id);
  return id;
}

async function editManifest(setDir: string, edit: (m: Record<string, any>) => void): Promise<void> {
  const path = join(setDir, 'manifest.json');
  const m = JSON.parse(await readFile(path, 'utf8')) as Record<string, any>;
  edit(m);
  await writeFile(path, JSON.stringify(m, null, 2));
}

async function firstArtifact(setDir: string): Promise<string> {
  const m = JSON.parse(await readFile(join(setDir, 'manifest.json'), 'utf8')) as { components: { artifacts: { path: string }[] }[] };
  return m.components[0]!.artifacts[0]!.path;
}

/** A config file that defines engine options with plain objects (no imports needed). */
async function configFile(name: string, body: string): Promise<string> {
  const path = join(dir.path, `${name}.mjs`);
  await writeFile(
    path,
    `export const writes = [];
const storage = { specVersion: 'v1', name: 'recording', async put(key) { writes.push(key); return { size: 0 }; }, async get() { throw Object.assign(new Error('none'), { code: 'NOT_FOUND' }); }, async list() { return []; }, async delete(key) { writes.push('delete ' + key); } };
const source = (name = 'test', specVersion = 'v1') => ({ specVersion, name, async backup() { writes.push('backup'); return { metadata: {} }; }, async restore() { writes.push('restore'); return {}; }, async check() { return { ok: true }; } });
${body}
`,
  );
  return path;
}

interface Case {
  name: string;
  /** Makes the damaged set the input is about; its id is given to `run`. */
  prepare?: () => Promise<string>;
  run: (setId: string) => Promise<{ code: number; message: string; writes?: string[] }>;
  exit: number;
  says: RegExp;
  /** Text that must not appear anywhere in the output (a secret from the input). */
  secret?: string;
}

const env = (vars: Record<string, string>, args: string[] = ['backup']) => async () => {
  const r = await cli(args, vars);
  return { code: r.code, message: `${r.stdout}${r.stderr}` };
};
const args = (argv: string[] | (() => Promise<string[]>), vars: Record<string, string> = {}) => async () => {
  const r = await cli(typeof argv === 'function' ? await argv() : argv, vars);
  return { code: r.code, message: `${r.stdout}${r.stderr}` };
};
const configured = (name: string, body: string, argv: string[] = ['backup']) => async () => {
  const path = await configFile(name, body);
  const r = await cli(['--config', path, ...argv]);
  const { writes } = (await import(pathToFileURL(path).href)) as { writes: string[] };
  return { code: r.code, message: `${r.stdout}${r.stderr}`, writes };
};
const library = (fn: () => unknown | Promise<unknown>) => async () => {
  try {
    await fn();
  } catch (error) {
    const be = error as BackupError;
    return { code: exitCodeForError(error), message: `${be.code} ${be.message} ${be.hint ?? ''}` };
  }
  return { code: EXIT.OK, message: 'accepted' };
};
const onSet = (command: (id: string) => string[], change: (setDir: string, id: string) => Promise<void>) => ({
  prepare: () => brokenCopy(change),
  run: async (id: string) => {
    const r = await cli(command(id));
    return { code: r.code, message: `${r.stdout}${r.stderr}` };
  },
});

let encryptedRoot: string;
let wrongIdentity: string;

const CASES: Case[] = [
  // Environment configuration: exit 2, each names the variable and what it expects.
  { name: 'BACKUP_DAILY_RETENTION not a number', run: env({ BACKUP_DAILY_RETENTION: 'seven' }), exit: 2, says: /BACKUP_DAILY_RETENTION="seven": expected a whole number of days/ },
  { name: 'BACKUP_WEEKLY_RETENTION zero', run: env({ BACKUP_WEEKLY_RETENTION: '0' }), exit: 2, says: /BACKUP_WEEKLY_RETENTION="0": expected a whole number of days >= 1/ },
  { name: 'BACKUP_CONCURRENCY out of range', run: env({ BACKUP_CONCURRENCY: '17' }), exit: 2, says: /BACKUP_CONCURRENCY="17": expected a whole number from 1 to 16/ },
  { name: 'BACKUP_METRICS_PORT out of range', run: env({ BACKUP_METRICS_PORT: '70000' }), exit: 2, says: /BACKUP_METRICS_PORT="70000": expected a port number/ },
  { name: 'BACKUP_TIMEZONE unknown', run: env({ BACKUP_TIMEZONE: 'Mars/Olympus' }), exit: 2, says: /BACKUP_TIMEZONE="Mars\/Olympus"/ },
  { name: 'BACKUP_SET_PREFIX with a path separator', run: env({ BACKUP_SET_PREFIX: '../evil' }), exit: 2, says: /BACKUP_SET_PREFIX="\.\.\/evil"/ },
  { name: 'BACKUP_SET_PREFIX with shell characters', run: env({ BACKUP_SET_PREFIX: `daily;touch ${join('/tmp', 'x')}$(id)` }), exit: 2, says: /BACKUP_SET_PREFIX=/ },
  { name: 'BACKUP_COMPONENTS with an unknown component', run: env({ BACKUP_COMPONENTS: 'redis,mongodb' }), exit: 2, says: /BACKUP_COMPONENTS=.*mongodb.*(expected|one of)/ },
  { name: 'BACKUP_COMPONENTS naming a component without URL', run: env({ BACKUP_COMPONENTS: 'redis,qdrant' }), exit: 2, says: /BACKUP_COMPONENTS=.*includes qdrant, but QDRANT_URL is not set/ },
  { name: 'cron with minute 61', run: env({ BACKUP_DAILY_SCHEDULE: '61 2 * * *' }), exit: 2, says: /BACKUP_DAILY_SCHEDULE="61 2 \* \* \*": expected a cron expression/ },
  { name: 'cron in words', run: env({ BACKUP_WEEKLY_SCHEDULE: 'every sunday' }), exit: 2, says: /BACKUP_WEEKLY_SCHEDULE="every sunday": expected a cron expression/ },
  { name: 'cron that never fires (31 February)', run: env({ BACKUP_MONTHLY_SCHEDULE: '0 4 31 2 *' }), exit: 2, says: /BACKUP_MONTHLY_SCHEDULE="0 4 31 2 \*": .*never fires/ },
  { name: 'BACKUP_MIN_FREE_DISK with an unknown unit', run: env({ BACKUP_MIN_FREE_DISK: '1 parsec' }), exit: 2, says: /BACKUP_MIN_FREE_DISK="1 parsec": unknown unit/ },
  {
    name: 'DATABASE_URL of another database kind (password not shown)',
    run: env({ DATABASE_URL: 'mysql://root:Sup3rSecretPw-93@db/app' }),
    exit: 2,
    says: /DATABASE_URL="mysql:\/\/root:\*\*\*@db\/app"/,
    secret: 'Sup3rSecretPw-93',
  },
  { name: 'REDIS_URL with an http scheme', run: env({ REDIS_URL: 'http://127.0.0.1:6379' }), exit: 2, says: /REDIS_URL="http:\/\/127\.0\.0\.1:6379\/": expected a URL starting with redis:\/\/ or rediss:\/\// },
  { name: 'SMTP_PORT not a number', run: env({ SMTP_HOST: 'mail.example.com', SMTP_PORT: 'abc' }), exit: 2, says: /SMTP_PORT="abc": expected a port number/ },
  { name: 'age recipient that is not a key', run: env({ BACKUP_ENCRYPTION_RECIPIENTS: 'age1notakey' }), exit: 2, says: /BACKUP_ENCRYPTION_RECIPIENTS="age1notakey"/ },
  {
    name: 'age identity that is not a key (value hidden)',
    run: env({ BACKUP_ENCRYPTION_IDENTITY: 'AGE-SECRET-KEY-1NOTAREALKEYZZZ' }),
    exit: 2,
    says: /BACKUP_ENCRYPTION_IDENTITY \(value hidden\)/,
    secret: 'NOTAREALKEYZZZ',
  },
  { name: 'S3 provider minio without endpoint', run: env({ BACKUP_S3_BUCKET: 'backups', BACKUP_S3_PROVIDER: 'minio' }), exit: 2, says: /BACKUP_S3_ENDPOINT: is required for BACKUP_S3_PROVIDER=minio/ },
  { name: 'BACKUP_S3_FORCE_PATH_STYLE not a boolean', run: env({ BACKUP_S3_BUCKET: 'backups', BACKUP_S3_FORCE_PATH_STYLE: 'maybe' }), exit: 2, says: /BACKUP_S3_FORCE_PATH_STYLE="maybe": expected true or false/ },
  {
    name: 'webhook over plain http to a public host (token hidden)',
    run: env({ BACKUP_NOTIFY_WEBHOOK: 'http://hooks.example.com/T0/B0/webhooktoken123456' }),
    exit: 2,
    says: /BACKUP_NOTIFY_WEBHOOK \(value hidden\)/,
    secret: 'webhooktoken123456',
  },
  { name: 'BACKUP_NOTIFY_ON with an unknown outcome', run: env({ BACKUP_NOTIFY_ON: 'success,sometimes' }), exit: 2, says: /BACKUP_NOTIFY_ON=.*sometimes/ },

  // Engine options from a config file: exit 2, the option named, the storage never written.
  { name: 'config: concurrency 0', run: configured('concurrency-0', 'export default { sources: [source()], storage, concurrency: 0 };'), exit: 2, says: /concurrency must be an integer from 1 to 64 \(got 0\)/ },
  { name: 'config: concurrency of the wrong type', run: configured('concurrency-str', "export default { sources: [source()], storage, concurrency: 'two' };"), exit: 2, says: /concurrency must be an integer from 1 to 64 \(got two\)/ },
  { name: 'config: unknown time zone', run: configured('tz', "export default { sources: [source()], storage, timeZone: 'Not/AZone' };"), exit: 2, says: /timeZone "Not\/AZone" is not a valid IANA time zone/ },
  { name: 'config: lock TTL too short', run: configured('ttl', 'export default { sources: [source()], storage, lockTtlMs: 10 };'), exit: 2, says: /lockTtlMs must be at least 1000/ },
  { name: 'config: source of a future interface version', run: configured('spec', "export default { sources: [source('test', 'v2')], storage };"), exit: 2, says: /sources\[0\] \(test\) has specVersion "v2"/ },
  { name: 'config: no storage', run: configured('nostorage', 'export default { sources: [source()], storage: [] };'), exit: 2, says: /storage: at least one Storage is required/ },
  { name: 'config: two sources with one name', run: configured('dup', "export default { sources: [source('redis'), source('redis')], storage };"), exit: 2, says: /two sources are named "redis"/ },
  { name: 'config: component name with a path separator', run: configured('badname', "export default { sources: [source('../etc')], storage };"), exit: 2, says: /component name "\.\.\/etc" must be lower-case/ },
  { name: 'config: schedule with hour 25', run: configured('cron', "export default { sources: [source()], storage, schedules: { daily: '0 25 * * *' } };"), exit: 2, says: /schedules\.daily: "0 25 \* \* \*" is not a valid cron expression/ },

  // Command line: exit 2.
  { name: 'backup of an unknown component', run: args(['backup', '--component', 'mongodb']), exit: 2, says: /unknown component "mongodb"; configured components: redis/ },
  { name: 'backup with an unknown tier', run: args(['backup', '--tier', 'hourly']), exit: 2, says: /hourly.*(daily|choices)/ },
  { name: 'restore of a set that does not exist', run: args(['restore', 'scholaria_backup_20990101_000000', '--yes']), exit: 2, says: /backup set scholaria_backup_20990101_000000 does not exist/ },
  { name: 'restore of a set id with path separators', run: args(['restore', '../../etc/passwd', '--yes']), exit: 2, says: /"\.\.\/\.\.\/etc\/passwd" is not a backup set id/ },
  { name: 'verify of a set id with a path inside', run: args(['verify', 'scholaria_backup_20260101_000000/../../x']), exit: 2, says: /is not a backup set id/ },
  { name: 'verify of a set id with shell characters', run: args(() => Promise.resolve(['verify', `x$(touch ${canary()});y`])), exit: 2, says: /is not a backup set id/ },
  { name: 'restore of a component the set lacks', run: args(() => Promise.resolve(['restore', goodSet, '--component', 'qdrant', '--yes'])), exit: 2, says: /set .* has no component "qdrant" \(it has: redis\)/ },
  { name: 'restore without confirmation, not on a terminal', run: args(() => Promise.resolve(['restore', goodSet])), exit: 2, says: /refusing to restore .* without confirmation/ },

  // Damaged sets: exit 1, the set and the problem named, nothing restored.
  {
    name: 'manifest truncated (verify)',
    ...onSet((id) => ['verify', id], async (d) => writeFile(join(d, 'manifest.json'), (await readFile(join(d, 'manifest.json'), 'utf8')).slice(0, 200))),
    exit: 1,
    says: /manifest\.json is not valid JSON \(truncated or corrupt\)/,
  },
  {
    name: 'manifest truncated (restore)',
    ...onSet((id) => ['restore', id, '--yes'], async (d) => writeFile(join(d, 'manifest.json'), (await readFile(join(d, 'manifest.json'), 'utf8')).slice(0, 120))),
    exit: 1,
    says: /is incomplete or damaged: .*not valid JSON/,
  },
  { name: 'manifest from a future formatVersion', ...onSet((id) => ['verify', id], (d) => editManifest(d, (m) => (m.formatVersion = 2))), exit: 1, says: /has formatVersion 2, but this library reads up to 1/ },
  {
    name: 'artifact path with ".." (restore)',
    ...onSet((id) => ['restore', id, '--yes'], (d) => editManifest(d, (m) => (m.components[0].artifacts[0].path = '../../../outside/dump.resp.zst'))),
    exit: 1,
    says: /path: must be a relative path without "\.\."/,
  },
  {
    name: 'artifact path absolute (verify)',
    ...onSet((id) => ['verify', id], (d) => editManifest(d, (m) => (m.components[0].artifacts[0].path = '/etc/passwd'))),
    exit: 1,
    says: /path: must be a relative path/,
  },
  { name: 'manifest that names another set', ...onSet((id) => ['verify', id], (d) => editManifest(d, (m) => (m.id = 'scholaria_backup_20200101_000000'))), exit: 1, says: /names set scholaria_backup_20200101_000000, not/ },
  { name: 'manifest with a malformed sha256', ...onSet((id) => ['verify', id], (d) => editManifest(d, (m) => (m.components[0].artifacts[0].sha256 = 'not-hex'))), exit: 1, says: /sha256/ },
  {
    name: 'SHA256SUMS with a wrong hash',
    ...onSet((id) => ['verify', id], async (d) => writeFile(join(d, 'SHA256SUMS'), (await readFile(join(d, 'SHA256SUMS'), 'utf8')).replace(/^[0-9a-f]{8}/, '00000000'))),
    exit: 1,
    says: /SHA256SUMS and manifest\.json disagree on the checksum of redis\//,
  },
  {
    name: 'SHA256SUMS listing an extra file',
    ...onSet((id) => ['verify', id], async (d) => writeFile(join(d, 'SHA256SUMS'), `${await readFile(join(d, 'SHA256SUMS'), 'utf8')}${'ab'.repeat(32)}  redis/extra.bin\n`)),
    exit: 1,
    says: /SHA256SUMS lists redis\/extra\.bin, which the manifest does not/,
  },
  {
    name: 'SHA256SUMS with a malformed line',
    ...onSet((id) => ['verify', id], async (d) => writeFile(join(d, 'SHA256SUMS'), 'this is not a checksum line\n')),
    exit: 1,
    says: /SHA256SUMS: line 1: checksum must be 64 hexadecimal digits/,
  },
  { name: 'an extra file in the set folder', ...onSet((id) => ['verify', id], (d) => writeFile(join(d, 'redis', 'planted.sh'), 'echo hi\n')), exit: 1, says: /unexpected file redis\/planted\.sh in the set/ },
  {
    name: 'artifact bytes changed (restore refuses before touching Redis)',
    ...onSet((id) => ['restore', id, '--yes'], async (d) => {
      const file = join(d, await firstArtifact(d));
      const bytes = await readFile(file);
      bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
      await writeFile(file, bytes);
    }),
    exit: 1,
    says: /checksum mismatch/,
  },
  {
    name: 'age identity that does not match the recipients',
    run: async () => {
      const r = await cli(['restore', 'latest', '--yes'], { BACKUP_DIR: encryptedRoot, BACKUP_ENCRYPTION_IDENTITY: wrongIdentity });
      return { code: r.code, message: `${r.stdout}${r.stderr}` };
    },
    exit: 1,
    says: /age/i,
    secret: 'wrong-identity-placeholder',
  },

  // Library inputs that do not pass through the CLI: the error code and its CLI exit code.
  { name: 'fs storage with an empty root', run: library(() => createFsStorage({ root: '' })), exit: 2, says: /CONFIG_INVALID createFsStorage: invalid options\n\s+- root: must be a non-empty directory path/ },
  { name: 'postgres source with an unknown compression', run: library(() => createPostgresSource({ url: 'postgresql://u@h/db', compression: 'lz4' as 'zstd' })), exit: 2, says: /CONFIG_INVALID .*- compression: Invalid option/s },
  { name: 'redis source with scanCount 0', run: library(() => createRedisSource({ url: 'redis://127.0.0.1', scanCount: 0 })), exit: 2, says: /CONFIG_INVALID .*redis\.scanCount/s },
  { name: 's3 storage with a slash in the bucket', run: library(() => createS3Storage({ bucket: 'a/b', region: 'us-east-1' })), exit: 2, says: /CONFIG_INVALID .*bucket: must be a bucket name/s },
  { name: 'age codec with a malformed recipient', run: library(() => createAgeCodec({ recipients: ['age1xyz'] })), exit: 2, says: /CONFIG_INVALID .*recipients\[0\]: recipient/s },
  { name: 'scheduler with a three-field cron', run: library(() => createScheduler({} as BackupEngine, { tiers: { daily: '* * *' } })), exit: 2, says: /CONFIG_INVALID .*schedule for tier "daily": "\* \* \*" is not a valid cron expression/s },
  {
    name: 'restore options of the wrong kind for redis',
    run: async () => {
      const engine = createBackupEngine({ sources: [createRedisSource({ url: redis.url() })], storage: createFsStorage({ root }) });
      const result = await engine.restore({ ref: goodSet, componentOptions: { redis: { mode: 'sideways' } } });
      const error = result.components[0]!.error as BackupError;
      return { code: result.status === 'ok' ? EXIT.OK : exitCodeForError(error), message: `${error.code} ${error.message}` };
    },
    exit: 2,
    says: /CONFIG_INVALID .*componentOptions\.redis\.mode/s,
  },
];

beforeAll(async () => {
  dir = await makeTempDir('faults-bad-input-');
  root = join(dir.path, 'backup');
  logDir = join(dir.path, 'logs');
  await mkdir(logDir);
  redis = await startRedis({ password: 'bad-input-redis-pw' });
  await seedRedis(redis, 500);
  liveDigest = await redisDigest(redis);
  const made = await cli(['--json', 'backup', '--tier', 'daily']);
  expect(made.code, made.stderr).toBe(0);
  goodSet = (JSON.parse(made.stdout) as { setId: string }).setId;
  // A set encrypted to one age key; the restore is given another key.
  const [right, wrong] = await Promise.all([generateAgeIdentity(), generateAgeIdentity()]);
  encryptedRoot = join(dir.path, 'encrypted');
  const enc = await cli(['backup'], { BACKUP_DIR: encryptedRoot, BACKUP_ENCRYPTION_RECIPIENTS: right.recipient });
  expect(enc.code, enc.stderr).toBe(0);
  wrongIdentity = wrong.identity;
  CASES.find((c) => c.name.startsWith('age identity'))!.secret = wrong.identity.slice('AGE-SECRET-KEY-1'.length);
});

afterAll(async () => {
  await redis?.stop();
  await dir?.remove();
});

describe(`bad input: ${CASES.length} malformed inputs`, () => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s: clear error, documented exit code, nothing written', async (_name, c) => {
    const setId = c.prepare ? await c.prepare() : '';
    const before = await snapshot(root);
    const beforeEncrypted = await snapshot(join(dir.path, 'encrypted'));
    const beforeLogs = await snapshot(logDir, false);
    const { code, message, writes } = await c.run(setId);
    if (process.env.FAULT_VERBOSE) console.info(`${c.name} -> exit ${code}: ${message.trim().split('\n').slice(0, 3).join(' / ')}`);
    expect(message).toMatch(c.says);
    expect(code, message).toBe(c.exit);
    if (c.secret) expect(message).not.toContain(c.secret);
    // Nothing written: no set, no lock, no temp file; the live data untouched.
    expect(await snapshot(root), 'the backup folder changed').toEqual(before);
    expect(await snapshot(join(dir.path, 'encrypted'))).toEqual(beforeEncrypted);
    expect(await redisDigest(redis)).toBe(liveDigest);
    expect(existsSync(canary())).toBe(false);
    if (writes) expect(writes).toEqual([]);
    // A configuration or usage error is refused before anything runs: not even a log file.
    if (c.exit === EXIT.USAGE) expect(await snapshot(logDir, false)).toEqual(beforeLogs);
  });

  it('all the bad inputs above were rejected and the good set still verifies', async () => {
    expect(CASES.length).toBeGreaterThanOrEqual(30);
    const r = await cli(['verify', goodSet]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });
});
