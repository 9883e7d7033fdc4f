import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, type TempDir } from '@scholaria/backup-testkit';
import { envDocsTable, loadEnvConfig, runCli, SHIPPED_ADAPTERS } from '@scholaria/backup-cli';
import { loadEnv } from '@scholaria/backup-core';
import { filesSourceEnv, flatStorageEnv } from '../src/index.js';

// The stock CLI with the example's adapters listed: configured from the environment alone.
const adapters = [...SHIPPED_ADAPTERS, filesSourceEnv, flatStorageEnv];

let work: TempDir;
beforeAll(async () => {
  work = await makeTempDir('third-party-cli-');
});
afterAll(async () => {
  await work?.remove();
});

async function cli(args: string[], env: Record<string, string>) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const stdin = new PassThrough();
  stdin.end();
  const code = await runCli(args, { stdout, stderr, stdin, env, cwd: work.path, isTTY: false, adapters });
  return { code, out, err };
}

describe('a third-party source and storage through the CLI .env configuration', () => {
  it('backs up to both storages and restores the folder, configured only by variables', async () => {
    const files = join(work.path, 'files');
    await mkdir(join(files, 'docs'), { recursive: true });
    await writeFile(join(files, 'docs', 'report.txt'), 'quarterly numbers');
    await writeFile(join(files, 'top.txt'), 'top');
    const env = {
      BACKUP_DIR: join(work.path, 'backup'),
      BACKUP_LOG_DIR: join(work.path, 'logs'),
      FILES_DIR: 'files', // relative: resolved against the working directory like BACKUP_DIR
      FLAT_STORAGE_DIR: join(work.path, 'flat'),
    };
    const backup = await cli(['backup', '--tier', 'daily'], env);
    expect(backup.code, backup.err).toBe(0);
    const setId = /backup (scholaria_backup_\S+) \(daily\): COMPLETE/.exec(backup.out)?.[1];
    expect(setId, backup.out).toBeDefined();
    // The set is on the shipped fs storage and on the example's flat storage.
    expect(await readdir(join(work.path, 'backup', setId!))).toContain('manifest.json');
    expect(await readdir(join(work.path, 'flat'))).toContain(encodeURIComponent(`${setId}/manifest.json`));

    await rm(join(files, 'docs'), { recursive: true });
    await writeFile(join(files, 'top.txt'), 'overwritten');
    const restore = await cli(['restore', 'latest', '--yes'], env);
    expect(restore.code, restore.err).toBe(0);
    expect(await readFile(join(files, 'docs', 'report.txt'), 'utf8')).toBe('quarterly numbers');
    expect(await readFile(join(files, 'top.txt'), 'utf8')).toBe('top');
  });

  it('reports its variables like the shipped ones: checked, typo warnings, BACKUP_COMPONENTS, docs', async () => {
    const bad = await cli(['list'], { BACKUP_DIR: join(work.path, 'b2'), FILES_DIR: 'a\0b' });
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/FILES_DIR.*without NUL bytes/);
    const loaded = loadEnv([...adapters], { FILES_DIR: '/srv/files', BACKUP_COMPONENTS: 'files' });
    expect(loaded.engine.components).toEqual(['files']);
    expect(() => loadEnvConfig({ BACKUP_COMPONENTS: 'files' }, adapters)).toThrow(/includes files, but FILES_DIR is not set/);
    expect(envDocsTable('en', adapters)).toContain('| `FLAT_STORAGE_DIR` | none | also store every set here, one file per object |');
  });
});
