import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { Transform, type Readable, type TransformCallback, type Writable } from 'node:stream';
import { BackupError, childProcessEnv } from '@scholaria/backup-core';
import { redactText } from './redact.js';

export type ToolName = 'pg_dump' | 'pg_restore' | 'pg_dumpall';

export interface ToolPaths {
  binDir?: string | undefined;
  pgDumpPath?: string | undefined;
  pgRestorePath?: string | undefined;
  pgDumpallPath?: string | undefined;
}

export interface PgVersion {
  /** 15 for 15.4, 9.6 for 9.6.24. */
  major: number;
  /** '15.4' */
  text: string;
}

const SYSTEM_PG_ROOT = '/usr/lib/postgresql';

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Candidate folders: the newest /usr/lib/postgresql/<v>/bin first (Debian keeps several side by side), then PATH. */
function searchDirs(): string[] {
  const dirs: string[] = [];
  if (existsSync(SYSTEM_PG_ROOT)) {
    const versions = readdirSync(SYSTEM_PG_ROOT)
      .filter((v) => /^\d+(\.\d+)?$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) dirs.push(join(SYSTEM_PG_ROOT, v, 'bin'));
  }
  for (const d of (process.env.PATH ?? '').split(delimiter)) if (d) dirs.push(d);
  return dirs;
}

/** Finds one tool; throws TOOL_MISSING naming where it looked. */
export function findTool(tool: ToolName, paths: ToolPaths, component: string): string {
  const explicit = tool === 'pg_dump' ? paths.pgDumpPath : tool === 'pg_restore' ? paths.pgRestorePath : paths.pgDumpallPath;
  const option = tool === 'pg_dump' ? 'pgDumpPath' : tool === 'pg_restore' ? 'pgRestorePath' : 'pgDumpallPath';
  if (explicit) {
    if (isExecutable(explicit)) return explicit;
    throw new BackupError('TOOL_MISSING', `${component}: ${tool} not found or not executable at ${explicit} (option ${option})`, {
      component,
      hint: `fix ${option}, or install the PostgreSQL client tools (e.g. apt-get install postgresql-client)`,
    });
  }
  const dirs = paths.binDir ? [paths.binDir] : searchDirs();
  for (const dir of dirs) {
    const candidate = join(dir, tool);
    if (isExecutable(candidate)) return candidate;
  }
  throw new BackupError(
    'TOOL_MISSING',
    `${component}: ${tool} not found (looked in ${paths.binDir ? `binDir ${paths.binDir}` : `${SYSTEM_PG_ROOT}/*/bin and PATH`})`,
    {
      component,
      hint: `install the PostgreSQL client tools of the server's major version or newer (e.g. apt-get install postgresql-client-16), or set ${paths.binDir ? 'binDir right' : `binDir or ${option}`}`,
    },
  );
}

export function parsePgVersion(text: string): PgVersion | undefined {
  const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(text) ?? /^(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(text.trim());
  if (!m) return undefined;
  const first = Number(m[1]);
  const second = m[2] === undefined ? undefined : Number(m[2]);
  if (first < 10) {
    const major = Number(`${first}.${second ?? 0}`);
    return { major, text: [m[1], m[2], m[3]].filter((x) => x !== undefined).join('.') };
  }
  return { major: first, text: second === undefined ? String(first) : `${first}.${second}` };
}

/** Major version of a server from `server_version_num` (150004 => 15, 90624 => 9.6). */
export function majorFromVersionNum(num: number): number {
  return num >= 100000 ? Math.floor(num / 10000) : Math.floor(num / 10000) + Math.floor((num % 10000) / 100) / 10;
}

export async function toolVersion(path: string, component: string): Promise<PgVersion> {
  const { code, stdout, stderr } = await runTool(path, ['--version'], { env: childProcessEnv(['PG']) });
  const version = code === 0 ? parsePgVersion(stdout) : undefined;
  if (!version) {
    throw new BackupError('TOOL_MISSING', `${component}: cannot read the version of ${path}: ${(stderr || stdout).trim() || `exit ${code}`}`, {
      component,
      hint: 'point binDir (or the tool path option) at a working PostgreSQL client installation',
    });
  }
  return version;
}

/** Keeps the last `limit` bytes of a child's stderr for error messages. */
export class StderrTail {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly limit = 64 * 1024) {}
  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > this.limit && this.chunks.length > 1) {
      this.size -= (this.chunks.shift() as Buffer).length;
    }
  }
  text(secrets: readonly (string | undefined)[] = []): string {
    return redactText(Buffer.concat(this.chunks).toString('utf8').trim(), secrets);
  }
}

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnedTool {
  child: ChildProcess;
  stderr: StderrTail;
  /** Settles when the process has exited and its output streams closed; rejects only when it could not start. */
  exited: Promise<ChildResult>;
}

export interface SpawnToolOptions {
  env: NodeJS.ProcessEnv;
  /**
   * A number is a file descriptor the child reads as its stdin (a verified local artifact); a
   * Readable backed by a descriptor (another child's stdout) connects the two by an OS pipe.
   */
  stdin?: 'pipe' | 'ignore' | number | Readable;
  /** A Writable backed by a file descriptor (another child's stdin) connects the two by an OS pipe. */
  stdout?: 'pipe' | 'ignore' | Writable;
  signal?: AbortSignal;
}

export function spawnTool(path: string, args: string[], o: SpawnToolOptions): SpawnedTool {
  const child = spawn(path, args, {
    env: o.env,
    stdio: [o.stdin ?? 'ignore', o.stdout ?? 'pipe', 'pipe'],
    windowsHide: true,
  });
  const stderr = new StderrTail();
  child.stderr?.on('data', (d: Buffer) => stderr.push(d));
  const exited = new Promise<ChildResult>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  if (o.signal) {
    const onAbort = () => child.kill('SIGTERM');
    if (o.signal.aborted) onAbort();
    else o.signal.addEventListener('abort', onAbort, { once: true });
    void exited.finally(() => o.signal?.removeEventListener('abort', onAbort)).catch(() => undefined);
  }
  return { child, stderr, exited };
}

/** Runs a tool to completion and collects its (small) output. */
export async function runTool(
  path: string,
  args: string[],
  o: SpawnToolOptions,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const t = spawnTool(path, args, { ...o, stdout: 'pipe' });
  let stdout = '';
  t.child.stdout?.setEncoding('utf8');
  t.child.stdout?.on('data', (d: string) => (stdout += d));
  try {
    const r = await t.exited;
    return { ...r, stdout, stderr: t.stderr.text() };
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    if (e.code === 'ENOENT' || e.code === 'EACCES') {
      return { code: 127, signal: null, stdout, stderr: `cannot run ${path}: ${e.message}` };
    }
    throw error;
  }
}

export function describeExit(r: ChildResult): string {
  return r.signal ? `was killed by ${r.signal}` : `exited with code ${r.code}`;
}

/**
 * Passes a child's stdout through and ends only after the child exited with code 0. A failed
 * child (non-zero exit, killed) errors the stream instead of ending it, so the sink downstream
 * never sees a clean end and the artifact is not stored, even though bytes were written.
 */
export function exitGate(tool: SpawnedTool, makeError: (r: ChildResult) => Error): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      tool.exited.then(
        (r) => (r.code === 0 ? cb() : cb(makeError(r))),
        (error: unknown) => cb(error as Error),
      );
    },
  });
}
