/**
 * The environment a child process (pg_dump, pg_restore, zstd, age...) gets: only what tools need
 * to run (search path, home, locale, time zone, temp folder, library path, Windows system
 * variables), never the rest of ours, which holds secrets (REDIS_URL with its password,
 * BACKUP_ENCRYPTION_IDENTITY, S3 keys, SMTP and webhook URLs). Callers add the tool's own
 * settings (e.g. PG* for libpq) on top.
 */
const PASSED = new Set([
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'SHELL',
  'LANG',
  'LANGUAGE',
  'TZ',
  'TMPDIR',
  'TMP',
  'TEMP',
  'LD_LIBRARY_PATH',
  'DYLD_LIBRARY_PATH',
  'SYSTEMROOT',
  'SystemRoot',
  'WINDIR',
  'COMSPEC',
  'PATHEXT',
  'USERPROFILE',
  'APPDATA',
  'LOCALAPPDATA',
  'KRB5CCNAME',
  'KRB5_CONFIG',
]);

/** `prefixes`: extra variable families the tool reads itself, e.g. ['PG'] for libpq, ['ZSTD_'] for zstd. */
export function childProcessEnv(prefixes: readonly string[] = [], from: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(from)) {
    if (value === undefined) continue;
    if (PASSED.has(key) || key.startsWith('LC_') || prefixes.some((p) => key.startsWith(p))) env[key] = value;
  }
  return env;
}
