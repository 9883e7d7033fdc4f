import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';

/** Writes an executable shell script; used to stand in for pg_dump in failure tests. */
export async function writeScript(dir: string, name: string, body: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, `#!/bin/sh\n${body}\n`);
  await chmod(path, 0o755);
  return path;
}

/** A pg_dump that claims an old version (the "pg_dump older than the server" case). */
export function oldPgDump(dir: string): Promise<string> {
  return writeScript(dir, 'pg_dump_13', 'echo "pg_dump (PostgreSQL) 13.4"');
}

/** A pg_dump that streams some bytes, complains on stderr (echoing the password) and fails. */
export function failingPgDump(dir: string, realBinDir: string): Promise<string> {
  return writeScript(
    dir,
    'pg_dump_failing',
    [
      `if [ "$1" = "--version" ]; then exec "${realBinDir}/pg_dump" --version; fi`,
      'head -c 200000 /dev/zero',
      'echo "pg_dump: error: simulated failure (password was $PGPASSWORD)" >&2',
      'exit 3',
    ].join('\n'),
  );
}

/** The real pg_dump behind a wrapper that records its pid, so a test can kill it mid-stream. */
export function pidRecordingPgDump(dir: string, realBinDir: string, pidFile: string): Promise<string> {
  return writeScript(
    dir,
    'pg_dump_pid',
    [`if [ "$1" = "--version" ]; then exec "${realBinDir}/pg_dump" --version; fi`, `echo $$ > "${pidFile}"`, `exec "${realBinDir}/pg_dump" "$@"`].join('\n'),
  );
}

/**
 * Puts a program of the test's own named `name` into the new folder `binDir` and that folder
 * first on PATH before `basePath` (codecs run the program by name: zstd, age). The caller
 * restores PATH after the test.
 */
export async function shadowProgram(binDir: string, name: string, body: string, basePath: string | undefined): Promise<void> {
  await mkdir(binDir, { recursive: true });
  await writeScript(binDir, name, body);
  process.env.PATH = `${binDir}${delimiter}${basePath ?? ''}`;
}
