import { createRedactor, type AnyAdapterDescriptor, type Redactor } from '@scholaria/backup-core';

/** Where the CLI reads and writes; `runCli` takes one so that tests can run it in-process. */
export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream;
  env: Record<string, string | undefined>;
  cwd: string;
  /** An interactive terminal: progress bars and the restore confirmation prompt. */
  isTTY: boolean;
  /** Aborted on SIGINT/SIGTERM; long commands stop cleanly when it fires. */
  signal?: AbortSignal;
  /**
   * The adapters configured from `.env` (default SHIPPED_ADAPTERS). A third-party adapter plugs
   * in by listing it: `runCli(argv, { adapters: [...SHIPPED_ADAPTERS, myStorageEnv] })`.
   */
  adapters?: readonly AnyAdapterDescriptor[];
}

export function defaultIo(): CliIo {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    cwd: process.cwd(),
    isTTY: Boolean(process.stdin.isTTY && process.stderr.isTTY),
  };
}

/**
 * Every byte the CLI prints goes through here, and through the secret redactor: configured
 * secrets are known only after the configuration is loaded, so the redactor can be swapped.
 */
export class Output {
  private redactor: Redactor = createRedactor([]);
  json = false;
  /** Set while a progress bar owns the terminal: lines are printed above it. */
  interceptStderr: ((line: string) => void) | undefined;

  constructor(readonly io: CliIo) {}

  setRedactor(redactor: Redactor): void {
    this.redactor = redactor;
  }

  get redact(): Redactor {
    return this.redactor;
  }

  /** A result line (stdout). */
  line(text = ''): void {
    this.io.stdout.write(`${this.redactor(text)}\n`);
  }

  /** A message for the operator (stderr). */
  note(text: string): void {
    const safe = this.redactor(text);
    if (this.interceptStderr) this.interceptStderr(safe);
    else this.io.stderr.write(`${safe}\n`);
  }

  /** A machine-readable document (stdout), redacted as text so that nested values are covered. */
  document(value: unknown): void {
    this.io.stdout.write(`${this.redactor(JSON.stringify(value, null, 2))}\n`);
  }

  /** One JSON line (stdout), for streams of events. */
  jsonLine(value: unknown): void {
    this.io.stdout.write(`${this.redactor(JSON.stringify(value))}\n`);
  }
}
