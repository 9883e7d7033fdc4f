import { accessSync, constants, existsSync, readdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { BackupError } from '@scholaria/backup-core';

export type PgProgram = 'pg_basebackup' | 'pg_ctl' | 'pg_receivewal';

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Finds a server-side PostgreSQL program: binDir, else the newest /usr/lib/postgresql/<v>/bin, else PATH. */
export function findPgProgram(program: PgProgram, binDir: string | undefined, component: string): string {
  const dirs: string[] = [];
  if (binDir) dirs.push(binDir);
  else {
    const root = '/usr/lib/postgresql';
    if (existsSync(root)) {
      for (const v of readdirSync(root).filter((d) => /^\d+$/.test(d)).sort((a, b) => Number(b) - Number(a))) dirs.push(join(root, v, 'bin'));
    }
    for (const d of (process.env.PATH ?? '').split(delimiter)) if (d) dirs.push(d);
  }
  for (const dir of dirs) {
    const candidate = join(dir, program);
    if (executable(candidate)) return candidate;
  }
  throw new BackupError('TOOL_MISSING', `${component}: ${program} not found (looked in ${binDir ? `binDir ${binDir}` : '/usr/lib/postgresql/*/bin and PATH'})`, {
    component,
    hint: `install the PostgreSQL server tools of the server's major version (e.g. apt-get install postgresql-15), or set PG_BIN_DIR`,
  });
}
