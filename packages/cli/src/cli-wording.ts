import type { Redactor } from '@scholaria/backup-core';

/**
 * The adapters' messages name their library options (`binDir`, `pgDumpPath`, `mode
 * "in-place"`, `targetDb`). A command-line user changes environment variables and flags
 * instead: every line the CLI prints names those. Config-file users keep the option names,
 * which are what they write, but still get the flags.
 */
const FLAG_WORDS: [RegExp, string][] = [
  [/\buse mode "in-place"/g, 'use `--mode in-place`'],
  [/\bmode "in-place"/g, '`--mode in-place`'],
  [/\bthe targetUrl restore option\b/g, '`--target-redis-url`'],
  [/\(targetUrl\)/g, '(`--target-redis-url`)'],
];

const ENV_WORDS: [RegExp, string][] = [
  [/\(option pgDumpPath\)/g, '(PG_DUMP_PATH)'],
  [/\(option pg(?:Restore|Dumpall)Path\)/g, '(found through PG_BIN_DIR or PATH)'],
  [/\bset binDir right\b/g, 'set PG_BIN_DIR right'],
  [/\bbinDir or pgDumpPath\b/g, 'PG_BIN_DIR or PG_DUMP_PATH'],
  [/\bbinDir(?: or |\/)pg(?:Restore|Dumpall)Path\b/g, 'PG_BIN_DIR'],
  [/\bpgDumpPath\b/g, 'PG_DUMP_PATH'],
  [/\bpg(?:Restore|Dumpall)Path\b/g, 'PG_BIN_DIR'],
  [/\bbinDir\b/g, 'PG_BIN_DIR'],
  [/\(url, password option or PGPASSWORD\)/g, '(DATABASE_URL, or PGPASSWORD)'],
];

export function cliWording(text: string, origin: string): string {
  let out = text;
  for (const [pattern, replacement] of FLAG_WORDS) out = out.replace(pattern, replacement);
  if (origin === 'environment') for (const [pattern, replacement] of ENV_WORDS) out = out.replace(pattern, replacement);
  return out;
}

/** The secret redactor, then the wording above. */
export function withCliWording(redact: Redactor, origin: string): Redactor {
  return (text: string) => cliWording(redact(text), origin);
}
