import { PassThrough } from 'node:stream';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, startRedis, type RedisServer, type TempDir } from '@scholaria/backup-testkit';
import { runCli } from '../src/index.js';

// runCli in-process, as a terminal would drive it: the confirmation prompt and the progress bars.

let redis: RedisServer;
let work: TempDir;

beforeAll(async () => {
  work = await makeTempDir('scholaria-cli-tty-');
  redis = await startRedis();
  await redis.command('SET', 'session:alice', 'token-a');
});

afterAll(async () => {
  await redis?.stop();
  await work?.remove();
});

function terminal(input = '') {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  // What cli-progress and readline look at on a real terminal.
  Object.assign(stderr, { isTTY: true, columns: 120 });
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const stdin = new PassThrough();
  stdin.end(input);
  return {
    io: {
      stdout,
      stderr,
      stdin,
      cwd: work.path,
      isTTY: true,
      env: { BACKUP_DIR: join(work.path, 'backup'), BACKUP_LOG_DIR: join(work.path, 'logs'), REDIS_URL: redis.url() },
    },
    out: () => out,
    err: () => err,
  };
}

const get = async (key: string) => String(await redis.command('GET', key));

describe('on a terminal', () => {
  let setId = '';

  it('backup draws a progress bar per component', async () => {
    const t = terminal();
    const code = await runCli(['backup', '--tier', 'daily'], t.io);
    expect(code, t.err()).toBe(0);
    setId = /backup (scholaria_backup_\S+) \(daily\): COMPLETE/.exec(t.out())![1]!;
    expect(t.err()).toMatch(/redis backup\s+\S+ B/);
    expect(existsSync(join(work.path, 'backup', setId, 'manifest.json'))).toBe(true);
  });

  it('restore asks for confirmation; anything but the set id or "yes" cancels and changes nothing', async () => {
    await redis.command('SET', 'session:alice', 'changed');
    const t = terminal('no\n');
    const code = await runCli(['restore', 'latest'], t.io);
    expect(code).toBe(1);
    expect(t.err()).toContain(`Type the set id (${setId}) or "yes" to continue:`);
    expect(t.err()).toContain('This overwrites the live data of: redis.');
    expect(t.err()).toContain('restore cancelled: nothing was changed');
    expect(await get('session:alice')).toBe('changed');
  });

  it('stdin closing without an answer cancels too', async () => {
    const t = terminal('');
    expect(await runCli(['restore', 'latest'], t.io)).toBe(1);
    expect(await get('session:alice')).toBe('changed');
  });

  it('typing the set id restores, with verification bars', async () => {
    const t = terminal(`${setId}\n`);
    const code = await runCli(['restore', 'latest'], t.io);
    expect(code, t.err()).toBe(0);
    expect(t.out()).toContain('verification: 1/1 artifacts match their SHA-256');
    expect(t.out()).toContain(`restore of ${setId}: OK`);
    expect(t.err()).toMatch(/redis verify\s+█+/);
    expect(await get('session:alice')).toBe('token-a');
  });

  it('"yes" restores as well; --dry-run never asks', async () => {
    await redis.command('SET', 'session:alice', 'changed');
    const dry = terminal('');
    expect(await runCli(['restore', 'latest', '--dry-run'], dry.io)).toBe(0);
    expect(dry.err()).not.toContain('Type the set id');
    expect(await get('session:alice')).toBe('changed');
    const t = terminal('YES\n');
    expect(await runCli(['restore', 'latest'], t.io)).toBe(0);
    expect(await get('session:alice')).toBe('token-a');
  });

  it('an abort signal (SIGINT) stops a backup: exit 1 and no set recorded', async () => {
    const t = terminal();
    const controller = new AbortController();
    controller.abort(new Error('received SIGINT'));
    const code = await runCli(['backup', '--json'], { ...t.io, signal: controller.signal });
    expect(code).toBe(1);
    const result = JSON.parse(t.out()) as { status: string; setId: string };
    expect(result.status).toBe('failed');
    expect(existsSync(join(work.path, 'backup', result.setId, 'manifest.json'))).toBe(false);
  });

  it('--debug shows the stack of an error; without it there is none', async () => {
    const plain = terminal();
    expect(await runCli(['restore', 'scholaria_backup_20990101_000000', '--yes'], plain.io)).toBe(2);
    expect(plain.err()).not.toMatch(/\n\s+at /);
    const debug = terminal();
    expect(await runCli(['restore', 'scholaria_backup_20990101_000000', '--yes', '--debug'], debug.io)).toBe(2);
    expect(debug.err()).toMatch(/\n\s+at /);
  });
});
