import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir, startPostgres, startRedis, type PostgresServer, type RedisServer, type TempDir } from '@scholaria/backup-testkit';
import { assertBuilt, runBin, type RunResult } from './helpers.js';

// The preamble the CLI test files share: a real PostgreSQL (with a `scholaria` database) and
// Redis, a backup and a log folder in a temporary directory, and a runner for the built binary
// configured through the environment, as operators run it.

export interface CliStack {
  pg: PostgresServer;
  redis: RedisServer;
  work: TempDir;
  backupDir: string;
  logDir: string;
}

/** Starts PostgreSQL and Redis for a CLI test file; the binary must be built. */
export async function startCliStack(tempPrefix: string, options: { redisPassword?: string } = {}): Promise<CliStack> {
  assertBuilt();
  const work = await makeTempDir(tempPrefix);
  const [pg, redis] = await Promise.all([startPostgres(), startRedis(options.redisPassword !== undefined ? { password: options.redisPassword } : {})]);
  await pg.createDatabase('scholaria');
  return { pg, redis, work, backupDir: join(work.path, 'backup'), logDir: join(work.path, 'logs') };
}

export async function stopCliStack(stack: Partial<CliStack>): Promise<void> {
  await Promise.allSettled([stack.pg?.stop(), stack.redis?.stop()]);
  await stack.work?.remove();
}

export type ExtraEnv = Record<string, string | undefined>;

/**
 * `env(extra)`: the environment a run sees; `cli(args, extra, input)`: runs the built binary and
 * records its output in `outputs`, so a file can check at the end that no secret was printed.
 * `stack` is read at each call, so it may be filled in by beforeAll.
 */
export function cliRunner(stack: () => Pick<CliStack, 'pg' | 'redis' | 'backupDir' | 'logDir'>) {
  const outputs: RunResult[] = [];
  const env = (extra: ExtraEnv = {}): ExtraEnv => {
    const s = stack();
    return {
      BACKUP_DIR: s.backupDir,
      BACKUP_LOG_DIR: s.logDir,
      DATABASE_URL: s.pg.url('scholaria'),
      REDIS_URL: s.redis.url(),
      BACKUP_TIMEZONE: 'Asia/Seoul',
      // The disk check is about the machine, not the CLI: keep a nearly full CI disk from failing it.
      BACKUP_MIN_FREE_DISK: '1MiB',
      ...extra,
    };
  };
  async function cli(args: string[], extra: ExtraEnv = {}, input?: string): Promise<RunResult> {
    const result = await runBin(args, { env: env(extra), ...(input !== undefined ? { input } : {}) });
    outputs.push(result);
    return result;
  }
  return { env, cli, outputs };
}

/** Row count of the `topics` table both CLI files seed. */
export async function topicCount(pg: PostgresServer): Promise<number> {
  return Number((await pg.query<{ n: string }>('scholaria', 'select count(*)::text as n from topics'))[0]!.n);
}

/** The set folders in `backupDir`, sorted (none when it does not exist yet). */
export function setDirs(backupDir: string): string[] {
  return existsSync(backupDir) ? readdirSync(backupDir).filter((d) => d.startsWith('scholaria_backup_')).sort() : [];
}
