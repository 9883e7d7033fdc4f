const MARKER = Symbol.for('@scholaria/backup.error');

export type BackupErrorCode =
  | 'CONFIG_INVALID'
  | 'USAGE'
  | 'NOT_FOUND'
  | 'SET_NOT_FOUND'
  | 'COMPONENT_UNKNOWN'
  | 'CHECKSUM_MISMATCH'
  | 'MANIFEST_INVALID'
  | 'UNSUPPORTED_VERSION'
  | 'INVALID_KEY'
  | 'LOCKED'
  | 'STORAGE_FAILED'
  | 'SOURCE_FAILED'
  | 'RESTORE_FAILED'
  | 'VERIFY_FAILED'
  | 'RETENTION_INVALID'
  | 'CODEC_FAILED'
  | 'DECRYPT_FAILED'
  | 'TOOL_MISSING'
  | 'TOOL_TOO_OLD'
  | 'CONNECTION_FAILED'
  | 'AUTH_FAILED'
  | 'ABORTED'
  | 'TIMEOUT'
  | 'NOTIFY_FAILED'
  | 'AUDIT_BROKEN'
  | 'INTERNAL';

export interface BackupErrorOptions {
  cause?: unknown;
  /** Whether repeating the same operation later may succeed (network blips, 5xx). */
  retryable?: boolean;
  /** What the operator should do next; shown under the message. */
  hint?: string;
  /** The component (postgres, redis, qdrant, ...) or storage the error belongs to. */
  component?: string;
  details?: Record<string, unknown>;
}

/**
 * The one error type of the library. Recognised across duplicate package copies through a
 * global symbol, so `BackupError.isInstance(e)` works where `instanceof` would not.
 */
export class BackupError extends Error {
  readonly [MARKER] = true;
  readonly code: BackupErrorCode;
  readonly retryable: boolean;
  readonly hint: string | undefined;
  readonly component: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: BackupErrorCode, message: string, options: BackupErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BackupError';
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.hint = options.hint;
    this.component = options.component;
    this.details = options.details;
  }

  static isInstance(error: unknown): error is BackupError {
    return typeof error === 'object' && error !== null && (error as Record<symbol, unknown>)[MARKER] === true;
  }

  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      ...(this.hint ? { hint: this.hint } : {}),
      ...(this.component ? { component: this.component } : {}),
      retryable: this.retryable,
    };
  }
}

export class ConfigError extends BackupError {
  /** Every problem found, each naming the field or variable. */
  readonly issues: string[];
  constructor(message: string, issues: string[] = [], options: BackupErrorOptions = {}) {
    super('CONFIG_INVALID', issues.length ? `${message}\n${issues.map((i) => `  - ${i}`).join('\n')}` : message, options);
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

export class NotFoundError extends BackupError {
  constructor(message: string, options: BackupErrorOptions = {}) {
    super('NOT_FOUND', message, options);
    this.name = 'NotFoundError';
  }
}

export class ChecksumError extends BackupError {
  constructor(message: string, options: BackupErrorOptions = {}) {
    super('CHECKSUM_MISMATCH', message, options);
    this.name = 'ChecksumError';
  }
}

export class LockError extends BackupError {
  constructor(message: string, options: BackupErrorOptions = {}) {
    super('LOCKED', message, { retryable: true, ...options });
    this.name = 'LockError';
  }
}

export class ManifestError extends BackupError {
  constructor(message: string, options: BackupErrorOptions = {}) {
    super('MANIFEST_INVALID', message, options);
    this.name = 'ManifestError';
  }
}

/** Wraps anything thrown by an adapter so that it names the component and keeps the cause. */
export function wrapError(
  error: unknown,
  code: BackupErrorCode,
  message: string,
  options: BackupErrorOptions = {},
): BackupError {
  if (BackupError.isInstance(error)) {
    if (options.component && !error.component) {
      return new BackupError(error.code, `${options.component}: ${error.message}`, {
        cause: error.cause ?? error,
        retryable: error.retryable,
        hint: error.hint ?? options.hint,
        component: options.component,
        details: error.details,
      });
    }
    return error;
  }
  const reason = error instanceof Error ? error.message : String(error);
  return new BackupError(code, `${message}: ${reason}`, { ...options, cause: error });
}

export function isAbortError(error: unknown): boolean {
  return (
    (error instanceof Error && (error.name === 'AbortError' || (error as { code?: string }).code === 'ABORT_ERR')) ||
    (BackupError.isInstance(error) && error.code === 'ABORTED')
  );
}
