import { BackupError, NotFoundError, isAbortError } from '@scholaria/backup-core';

export interface S3ErrorContext {
  /** The storage's name, 's3://bucket/prefix'. */
  storage: string;
  bucket: string;
  /** e.g. 'put', 'get', 'list', 'delete', 'deleteMany', 'stat', 'createExclusive' */
  op: string;
  key?: string;
  /** Where requests go, for network errors; never holds credentials. */
  endpoint: string;
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
]);

const AUTH_HINTS: Record<string, string> = {
  InvalidAccessKeyId:
    'the access key id is not known to this service: check `credentials` (or AWS_ACCESS_KEY_ID / the profile) and that `endpoint` points to the service the key belongs to',
  SignatureDoesNotMatch:
    'the secret access key does not match the access key id (or the system clock is far off): check `credentials.secretAccessKey` / AWS_SECRET_ACCESS_KEY',
  InvalidToken: 'the session token is invalid: refresh the temporary credentials',
  ExpiredToken: 'the session token has expired: refresh the temporary credentials',
  TokenRefreshRequired: 'the session token has expired: refresh the temporary credentials',
  CredentialsProviderError:
    'no AWS credentials were found: pass `credentials`, or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile or an instance role',
};

const TRANSIENT_CODES = new Set([
  'InternalError',
  'ServiceUnavailable',
  'SlowDown',
  'RequestTimeout',
  'RequestTimeTooSkewed',
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'TimeoutError',
  'ConditionalRequestConflict',
]);

interface SdkErrorLike {
  name?: string;
  code?: string;
  Code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number; attempts?: number };
  $retryable?: unknown;
}

/** The S3 error code ('AccessDenied', 'NoSuchKey', ...) or Node error code of anything thrown. */
export function s3ErrorCode(error: unknown): string | undefined {
  const e = error as SdkErrorLike | null;
  if (!e || typeof e !== 'object') return undefined;
  let code: string | undefined;
  if (typeof e.Code === 'string') code = e.Code;
  else if (typeof e.code === 'string' && e.code) code = e.code;
  else if (typeof e.name === 'string' && e.name !== 'Error') code = e.name;
  // What the SDK calls an error answer without a body (HEAD): no code at all.
  return code === 'Unknown' || code === 'UnknownError' ? undefined : code;
}

export function httpStatusOf(error: unknown): number | undefined {
  return (error as SdkErrorLike | null)?.$metadata?.httpStatusCode;
}

/** Errors worth another try later: network trouble, throttling, 5xx. */
export function isTransientS3Error(error: unknown): boolean {
  if (BackupError.isInstance(error)) return error.retryable;
  const code = s3ErrorCode(error);
  const status = httpStatusOf(error);
  return (code !== undefined && (NETWORK_CODES.has(code) || TRANSIENT_CODES.has(code))) || (status !== undefined && status >= 500);
}

export function isNotFound(error: unknown): boolean {
  const code = s3ErrorCode(error);
  return code === 'NoSuchKey' || code === 'NotFound' || (code !== 'NoSuchBucket' && httpStatusOf(error) === 404);
}

function reasonOf(error: unknown): string {
  const e = error as SdkErrorLike | null;
  const code = s3ErrorCode(error);
  const status = httpStatusOf(error);
  if (code === undefined && status !== undefined) return `HTTP ${status} without an error code (a HEAD answer has no body)`;
  const message = typeof e?.message === 'string' && e.message && e.message !== code ? e.message : undefined;
  if (code && message) return `${message} (${code}${status ? `, HTTP ${status}` : ''})`;
  if (code) return `${code}${status ? ` (HTTP ${status})` : ''}`;
  return message ?? String(error);
}

export function abortedError(ctx: S3ErrorContext, signal?: AbortSignal): BackupError {
  const reason = signal?.reason;
  const detail = reason instanceof Error ? `: ${reason.message}` : typeof reason === 'string' ? `: ${reason}` : '';
  return new BackupError('ABORTED', `${ctx.storage}: ${ctx.op}${ctx.key === undefined ? '' : ` "${ctx.key}"`} was aborted${detail}`, {
    retryable: true,
    component: ctx.storage,
    details: { bucket: ctx.bucket, op: ctx.op, ...(ctx.key === undefined ? {} : { key: ctx.key }) },
  });
}

/**
 * Turns whatever the SDK threw into a BackupError naming the bucket, the operation and what to
 * do. Permanent errors (access, missing bucket, bad keys) are marked not retryable so callers
 * fail fast instead of retrying.
 */
export function s3Failure(error: unknown, ctx: S3ErrorContext): BackupError {
  if (BackupError.isInstance(error)) return error;
  if (isAbortError(error)) return abortedError(ctx);
  const code = s3ErrorCode(error);
  const status = httpStatusOf(error);
  const what = ctx.key === undefined ? ctx.op : `${ctx.op} "${ctx.key}"`;
  const where = `${ctx.storage} (bucket "${ctx.bucket}")`;
  const details = {
    bucket: ctx.bucket,
    op: ctx.op,
    endpoint: ctx.endpoint,
    ...(ctx.key === undefined ? {} : { key: ctx.key }),
    ...(code === undefined ? {} : { s3Code: code }),
    ...(status === undefined ? {} : { httpStatus: status }),
  };
  const make = (
    backupCode: ConstructorParameters<typeof BackupError>[0],
    message: string,
    hint: string,
    retryable = false,
  ) => new BackupError(backupCode, message, { cause: error, hint, retryable, component: ctx.storage, details });
  const reason = reasonOf(error);

  if (code === 'NoSuchBucket') {
    return make(
      'STORAGE_FAILED',
      `${where}: ${what} failed: the bucket "${ctx.bucket}" does not exist at ${ctx.endpoint}`,
      'create the bucket first (the storage never creates buckets), or fix `bucket`, `endpoint` and `region`',
    );
  }
  if (code !== undefined && code in AUTH_HINTS) {
    return make('AUTH_FAILED', `${where}: ${what} was refused: ${reason}`, AUTH_HINTS[code]!);
  }
  if (status === 403 && (code === undefined || code === 'Forbidden' || code === '403')) {
    // HEAD answers carry no error code: a bad key id, a bad secret and a missing permission look alike.
    return make(
      'AUTH_FAILED',
      `${where}: ${what} was refused: ${reason}`,
      `check \`credentials\` (access key id and secret) and that they have s3:GetObject and s3:ListBucket on "${ctx.bucket}"`,
    );
  }
  if (code === 'AccessDenied' || code === 'AllAccessDisabled' || code === 'Forbidden' || status === 403) {
    return make(
      'AUTH_FAILED',
      `${where}: ${what} was refused: ${reason}`,
      `give these credentials s3:ListBucket on "${ctx.bucket}" and s3:GetObject, s3:PutObject, s3:DeleteObject, s3:AbortMultipartUpload on its objects (and s3:DeleteObjectVersion/s3:ListBucketVersions when deleting versions); check the bucket policy and KMS key policy`,
    );
  }
  if (code === 'PermanentRedirect' || code === 'AuthorizationHeaderMalformed' || code === 'IllegalLocationConstraintException' || status === 301) {
    return make(
      'CONFIG_INVALID',
      `${where}: ${what} failed: the bucket is in another region than the one configured: ${reason}`,
      'set `region` to the bucket\'s region (see the bucket properties in the console)',
    );
  }
  if (code === 'InvalidObjectState') {
    return make(
      'STORAGE_FAILED',
      `${where}: ${what} failed: the object is archived (${reason})`,
      'restore the object from its archive storage class first (S3 RestoreObject), then retry',
    );
  }
  if (typeof (error as SdkErrorLike | null)?.message === 'string' && /region is missing/i.test((error as Error).message)) {
    return make('CONFIG_INVALID', `${where}: ${what} failed: no region is configured`, 'set `region` (or AWS_REGION / a profile region)');
  }
  if (code !== undefined && NETWORK_CODES.has(code)) {
    return make(
      'CONNECTION_FAILED',
      `${where}: ${what} failed: cannot reach ${ctx.endpoint}: ${reason}`,
      'check `endpoint`, DNS and the network path (proxy, firewall) to the S3 service; the request was retried with backoff',
      true,
    );
  }
  if (code === 'TimeoutError' || code === 'RequestTimeout') {
    return make(
      'TIMEOUT',
      `${where}: ${what} timed out talking to ${ctx.endpoint}: ${reason}`,
      'check the network; raise `socketTimeoutMs` or `connectionTimeoutMs` for slow links',
      true,
    );
  }
  if (isTransientS3Error(error)) {
    return make(
      'STORAGE_FAILED',
      `${where}: ${what} failed after retries: ${reason}`,
      'the service is throttling or failing; try again later, or raise `maxAttempts`',
      true,
    );
  }
  if (code === 'NotImplemented' || code === 'MethodNotAllowed' || status === 501) {
    return make(
      'STORAGE_FAILED',
      `${where}: ${what} failed: the service does not implement this S3 operation: ${reason}`,
      ctx.op === 'deleteMany' || ctx.op === 'delete'
        ? 'set `deleteAllVersions: false` (and `objectLock` off) for services without ListObjectVersions'
        : ctx.op === 'createExclusive'
          ? 'set `conditionalWrites: false` for services without conditional writes'
          : 'check the provider settings for this service',
    );
  }
  if (code === 'EntityTooLarge' || code === 'EntityTooSmall' || code === 'InvalidPart' || code === 'InvalidPartOrder') {
    return make('STORAGE_FAILED', `${where}: ${what} failed: ${reason}`, 'check `partSizeBytes` and pass `size` to put when known');
  }
  return make('STORAGE_FAILED', `${where}: ${what} failed: ${reason}`, 'see the cause; check the bucket, endpoint and credentials');
}

export function notFound(ctx: S3ErrorContext, error?: unknown): NotFoundError {
  return new NotFoundError(`${ctx.storage}: no object "${ctx.key ?? ''}" in bucket "${ctx.bucket}"`, {
    cause: error,
    component: ctx.storage,
    hint: 'list the storage to see which keys exist',
    details: { bucket: ctx.bucket, op: ctx.op, key: ctx.key },
  });
}
