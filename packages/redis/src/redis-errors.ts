import { BackupError, type BackupErrorCode } from '@scholaria/backup-core';

export const COMPONENT = 'redis';

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** AUTH sent to a server that has no password: ioredis tolerates it, so the raw connections do too. */
export function isNoPasswordConfigured(message: string): boolean {
  return /no password is set|without any password configured/i.test(message);
}

export function isAuthError(error: unknown): boolean {
  const m = messageOf(error);
  return /WRONGPASS|NOAUTH|invalid password|invalid username-password|AUTH failed/i.test(m);
}

/** A refusal of a command by the server (ACL, renamed or disabled command), as opposed to a broken connection. */
export function isCommandRefused(error: unknown): boolean {
  const m = messageOf(error);
  return /NOPERM|unknown command|unknown subcommand|not allowed|command is disabled|ERR .*(not supported|disabled)/i.test(m);
}

export function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: string } | undefined)?.code;
  return (
    (typeof code === 'string' && /^E(CONNREFUSED|CONNRESET|NOTFOUND|AI_AGAIN|TIMEDOUT|HOSTUNREACH|NETUNREACH|PIPE)$/.test(code)) ||
    /connect ETIMEDOUT|Connection is closed|All sentinels are unreachable|getaddrinfo|socket hang up|ECONNREFUSED|Stream isn't writeable/i.test(
      messageOf(error),
    )
  );
}

/** Maps a connection-time failure to AUTH_FAILED / CONNECTION_FAILED with a hint; never includes credentials. */
export function connectionError(error: unknown, target: string): BackupError {
  if (BackupError.isInstance(error)) return error;
  const reason = messageOf(error);
  if (isAuthError(error)) {
    return new BackupError('AUTH_FAILED', `redis: authentication to ${target} failed: ${reason}`, {
      cause: error,
      component: COMPONENT,
      hint: 'Check the password (and the username for an ACL user) in the url or the username/password options.',
    });
  }
  return new BackupError('CONNECTION_FAILED', `redis: cannot connect to ${target}: ${reason}`, {
    cause: error,
    component: COMPONENT,
    retryable: true,
    hint: 'Check that the server is running and reachable at that address (host, port, TLS, firewall), then retry.',
  });
}

export function redisError(
  code: BackupErrorCode,
  message: string,
  hint: string,
  options: { cause?: unknown; retryable?: boolean; details?: Record<string, unknown> } = {},
): BackupError {
  return new BackupError(code, `redis: ${message}`, { ...options, hint, component: COMPONENT });
}

export function abortedError(): BackupError {
  return redisError('ABORTED', 'operation aborted', 'The run was cancelled; start it again when ready.');
}

/** A printable, bounded rendering of a (possibly binary) key for error messages. */
export function printableKey(key: Buffer): string {
  const shown = key.subarray(0, 80);
  let out = '';
  for (const byte of shown) {
    out += byte >= 0x20 && byte < 0x7f && byte !== 0x5c ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, '0')}`;
  }
  return key.length > shown.length ? `${out}...(${key.length} bytes)` : out;
}
