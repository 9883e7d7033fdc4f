import { join } from 'node:path';
import { it } from 'vitest';
import { makeTempDir, startPostgres, startRedis } from '@scholaria/backup-testkit';
import { runBin } from './helpers.js';
it('scratch', async () => {
  const work = await makeTempDir('scratch-');
  const [pg, redis] = await Promise.all([startPostgres(), startRedis({ password: 'pw' })]);
  await pg.createDatabase('scholaria');
  await pg.query('scholaria', "create table t (id int); insert into t select generate_series(1,10)");
  await redis.command('SET', 'a', 'b');
  const env = { BACKUP_DIR: join(work.path, 'b'), BACKUP_LOG_DIR: join(work.path, 'l'), DATABASE_URL: pg.url('scholaria'), REDIS_URL: redis.url(), BACKUP_TIMEZONE: 'Asia/Seoul', BACKUP_MIN_FREE_DISK: '1MiB' };
  const show = async (args: string[], e: Record<string, string> = {}) => { const r = await runBin(args, { env: { ...env, ...e } }); console.log(`$ ${args.join(' ')} -> ${r.code}\n${r.stdout}\n--stderr--\n${r.stderr}`); };
  await show(['backup']);
  await show(['restore', 'latest', '--dry-run']);
  await show(['restore', 'latest', '--yes', '--component', 'redis']);
  await pg.stop(); await redis.stop(); await work.remove();
}, 120000);
