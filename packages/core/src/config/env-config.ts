import { hostname } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { Cron } from 'croner';
import { z } from 'zod';
import { ConfigError } from '../errors/backup-error.js';
import type { RetentionConfig } from '../engine/types.js';
import { retentionFromDays } from '../retention/tier-retention.js';

/**
 * Configuration from environment variables (the strategy document's `.env`).
 *
 * Empty or blank values count as unset. Every invalid variable is reported at once in one
 * ConfigError (`issues`: one line per variable with the bad value, unless it is a secret, and
 * what is expected). Secrets are marked *secret* and never appear in errors; URLs are shown with
 * their password replaced by `***`.
 *
 * | variable | default | meaning |
 * | --- | --- | --- |
 * | `BACKUP_DIR` | `/backup` | local backup folder (fs storage); relative paths are resolved against the working directory |
 * | `BACKUP_DAILY_RETENTION` | `7` | days the daily tier is kept (whole number >= 1), within days of its newest set |
 * | `BACKUP_WEEKLY_RETENTION` | `30` | days the weekly tier is kept |
 * | `BACKUP_MONTHLY_RETENTION` | `365` | days the monthly tier is kept |
 * | `BACKUP_DAILY_SCHEDULE` | `0 2 * * *` | cron for the daily tier (5 fields, or 6 with seconds; checked with croner) |
 * | `BACKUP_WEEKLY_SCHEDULE` | `0 3 * * 0` | cron for the weekly tier |
 * | `BACKUP_MONTHLY_SCHEDULE` | `0 4 1 * *` | cron for the monthly tier |
 * | `BACKUP_TIMEZONE` | `UTC` | IANA zone for schedules, set ids and timestamps (`Asia/Seoul`) |
 * | `BACKUP_SET_PREFIX` | `scholaria_backup` | set id prefix, `[A-Za-z0-9][A-Za-z0-9_-]*` |
 * | `BACKUP_COMPONENTS` | those whose URL is set | comma list of `postgres`, `redis`, `qdrant` |
 * | `BACKUP_CONCURRENCY` | `2` | components backed up at once, 1-16 |
 * | `BACKUP_MIN_FREE_DISK` | `1GiB` | free space below which health fails: bytes, or a number with B, KB/MB/GB/TB (powers of 1000), KiB/MiB/GiB/TiB or K/M/G/T (powers of 1024) |
 * | `BACKUP_LOG_DIR` | `/var/log/scholaria` | folder for the CLI's log files |
 * | `BACKUP_METRICS_PORT` | none | port for the scheduler's metrics endpoint, 1-65535 |
 * | `BACKUP_NOTIFY_EMAIL` | none | comma list of addresses to email |
 * | `BACKUP_NOTIFY_FROM` | `backup@<hostname>` | sender, `addr` or `Name <addr>` |
 * | `BACKUP_NOTIFY_WEBHOOK` | none | webhook URL (*treated as secret*: it carries a token); https, or http to a loopback host; kind from the host: `hooks.slack.com` = slack, `discord.com`/`discordapp.com` `/api/webhooks/...` = discord, else generic |
 * | `BACKUP_NOTIFY_ON` | `success,partial,failure` | comma list of `start`, `success`, `partial`, `failure` (or `all`) |
 * | `SMTP_URL` | none | `smtp://` or `smtps://` URL, credentials allowed; or use the five below |
 * | `SMTP_HOST` | none | SMTP server host name |
 * | `SMTP_PORT` | `465` if secure, else `587` | 1-65535 |
 * | `SMTP_USER` | none | SMTP login |
 * | `SMTP_PASSWORD` | none | *secret*; needs `SMTP_USER` |
 * | `SMTP_SECURE` | `true` if port 465 | implicit TLS (`true`/`false`/`1`/`0`) |
 * | `BACKUP_ENCRYPTION_RECIPIENTS` | none | comma list of age X25519 recipients (`age1...`, checksum verified) |
 * | `BACKUP_ENCRYPTION_IDENTITY_FILE` | none | path of an age identity file, for restores |
 * | `BACKUP_ENCRYPTION_IDENTITY` | none | *secret*: an age identity (`AGE-SECRET-KEY-1...`), for restores |
 * | `BACKUP_ENCRYPTION_PASSPHRASE` | none | *secret*: encrypt with a passphrase instead of recipients (not both); not trimmed |
 * | `DATABASE_URL` | none | `postgres://` or `postgresql://` URL (password is a secret) |
 * | `PG_DUMP_PATH` | `pg_dump` on PATH | path of `pg_dump` |
 * | `PG_BIN_DIR` | search | folder holding `pg_dump`/`pg_restore` |
 * | `REDIS_URL` | none | `redis://` or `rediss://` URL, optional `/<db>` |
 * | `QDRANT_URL` | none | `http://` or `https://` URL of Qdrant |
 * | `QDRANT_API_KEY` | none | *secret*; no spaces or control characters |
 * | `BACKUP_S3_BUCKET` | none | bucket; setting any `BACKUP_S3_*` needs it |
 * | `BACKUP_S3_PREFIX` | none | key prefix inside the bucket, without `..` |
 * | `BACKUP_S3_REGION` | SDK default | e.g. `us-east-1`, `auto` (R2) |
 * | `BACKUP_S3_ENDPOINT` | AWS | http(s) URL; required for `minio`, `r2`, `b2` |
 * | `BACKUP_S3_FORCE_PATH_STYLE` | `true` for minio, else `false` | `true`/`false`/`1`/`0` |
 * | `BACKUP_S3_PROVIDER` | `aws` | `aws`, `minio`, `r2` or `b2` |
 *
 * S3 credentials are not read here: the AWS SDK reads `AWS_ACCESS_KEY_ID` and friends itself.
 */
export interface EnvConfig {
  backupDir: string;
  logDir: string;
  setPrefix: string;
  timeZone: string;
  retentionDays: { daily: number; weekly: number; monthly: number };
  /** `retentionFromDays(retentionDays)`: `{ tiers: { daily: { within: '7d' }, ... } }`. */
  retention: RetentionConfig;
  schedules: { daily: string; weekly: string; monthly: string };
  components: EnvComponent[];
  concurrency: number;
  minFreeDiskBytes: number;
  metricsPort?: number;
  notify: {
    email: string[];
    from: string;
    webhook?: { url: string; kind: WebhookKind };
    on: NotifyOn[];
  };
  smtp?: SmtpEnvConfig;
  encryption?: {
    recipients: string[];
    identityFile?: string;
    identity?: string;
    passphrase?: string;
  };
  postgres?: { url: string; pgDumpPath?: string; pgBinDir?: string };
  redis?: { url: string };
  qdrant?: { url: string; apiKey?: string };
  s3?: {
    bucket: string;
    prefix?: string;
    region?: string;
    endpoint?: string;
    forcePathStyle: boolean;
    provider: S3Provider;
  };
  /** Valid but probably unintended settings (e.g. email without SMTP), for the CLI to print. */
  warnings: string[];
}

export type EnvComponent = 'postgres' | 'redis' | 'qdrant';
export type NotifyOn = 'start' | 'success' | 'partial' | 'failure';
export type WebhookKind = 'slack' | 'discord' | 'generic';
export type S3Provider = 'aws' | 'minio' | 'r2' | 'b2';

export interface SmtpEnvConfig {
  /** SMTP_URL as given (may hold credentials), when it was used. */
  url?: string;
  host: string;
  port: number;
  secure: boolean;
  user?: string;
  password?: string;
}

/** One invalid variable. `value` is absent for secrets. */
export interface EnvIssue {
  variable: string;
  value?: string;
  message: string;
}

export const ENV_VARIABLES = [
  'BACKUP_DIR',
  'BACKUP_DAILY_RETENTION',
  'BACKUP_WEEKLY_RETENTION',
  'BACKUP_MONTHLY_RETENTION',
  'BACKUP_DAILY_SCHEDULE',
  'BACKUP_WEEKLY_SCHEDULE',
  'BACKUP_MONTHLY_SCHEDULE',
  'BACKUP_TIMEZONE',
  'BACKUP_SET_PREFIX',
  'BACKUP_COMPONENTS',
  'BACKUP_CONCURRENCY',
  'BACKUP_MIN_FREE_DISK',
  'BACKUP_LOG_DIR',
  'BACKUP_METRICS_PORT',
  'BACKUP_NOTIFY_EMAIL',
  'BACKUP_NOTIFY_FROM',
  'BACKUP_NOTIFY_WEBHOOK',
  'BACKUP_NOTIFY_ON',
  'SMTP_URL',
  'SMTP_HOST',
  'SMTP_PORT',
  'SMTP_USER',
  'SMTP_PASSWORD',
  'SMTP_SECURE',
  'BACKUP_ENCRYPTION_RECIPIENTS',
  'BACKUP_ENCRYPTION_IDENTITY_FILE',
  'BACKUP_ENCRYPTION_IDENTITY',
  'BACKUP_ENCRYPTION_PASSPHRASE',
  'DATABASE_URL',
  'PG_DUMP_PATH',
  'PG_BIN_DIR',
  'REDIS_URL',
  'QDRANT_URL',
  'QDRANT_API_KEY',
  'BACKUP_S3_BUCKET',
  'BACKUP_S3_PREFIX',
  'BACKUP_S3_REGION',
  'BACKUP_S3_ENDPOINT',
  'BACKUP_S3_FORCE_PATH_STYLE',
  'BACKUP_S3_PROVIDER',
] as const;

const COMPONENTS = ['postgres', 'redis', 'qdrant'] as const;
const NOTIFY_ON = ['start', 'success', 'partial', 'failure'] as const;
const S3_PROVIDERS = ['aws', 'minio', 'r2', 'b2'] as const;
const SECRET_VARIABLES = new Set(['SMTP_PASSWORD', 'BACKUP_ENCRYPTION_IDENTITY', 'BACKUP_ENCRYPTION_PASSPHRASE', 'QDRANT_API_KEY', 'BACKUP_NOTIFY_WEBHOOK']);
const URL_VARIABLES = new Set(['DATABASE_URL', 'REDIS_URL', 'QDRANT_URL', 'SMTP_URL', 'BACKUP_S3_ENDPOINT']);
const UNTRIMMED = new Set(['BACKUP_ENCRYPTION_PASSPHRASE', 'SMTP_PASSWORD']);

// ---------- small parsers, exported where other packages need the same rules ----------

const BYTE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  k: 2 ** 10,
  m: 2 ** 20,
  g: 2 ** 30,
  t: 2 ** 40,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/**
 * Bytes from `1073741824`, `500MiB`, `1.5GB`, `2G`: B, KB/MB/GB/TB (powers of 1000),
 * KiB/MiB/GiB/TiB and K/M/G/T (powers of 1024), case-insensitive. Throws a ConfigError naming `field`.
 */
export function parseByteSize(spec: string, field = 'size'): number {
  const problem = byteSizeProblem(spec);
  if (typeof problem === 'string') {
    throw new ConfigError(`${field}: ${problem}`, [], { hint: 'Write a size like 1073741824, 500MiB or 1GB.' });
  }
  return problem;
}

function byteSizeProblem(spec: string): number | string {
  const m = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(String(spec).trim());
  if (!m) return 'expected a size in bytes, optionally with a unit (e.g. 1GiB, 500MB)';
  const factor = BYTE_UNITS[m[2]!.toLowerCase()];
  if (factor === undefined) return `unknown unit "${m[2]}" (use B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)`;
  const bytes = Math.floor(Number(m[1]) * factor);
  if (!Number.isSafeInteger(bytes)) return 'the size is too large';
  return bytes;
}

const BECH32_CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';

function bech32Valid(text: string, hrp: string, dataLength: number): boolean {
  const s = text.toLowerCase();
  if (!s.startsWith(`${hrp}1`)) return false;
  const data = s.slice(hrp.length + 1);
  if (data.length !== dataLength) return false;
  const values: number[] = [];
  for (const c of hrp) values.push(c.charCodeAt(0) >> 5);
  values.push(0);
  for (const c of hrp) values.push(c.charCodeAt(0) & 31);
  for (const c of data) {
    const v = BECH32_CHARSET.indexOf(c);
    if (v === -1) return false;
    values.push(v);
  }
  const GEN = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= GEN[i]!;
  }
  return chk === 1;
}

/** True for an age X25519 recipient (`age1` + 58 bech32 characters with a valid checksum). */
export function isAgeRecipient(text: string): boolean {
  return text === text.toLowerCase() && bech32Valid(text, 'age', 58);
}

/** True for an age X25519 identity (`AGE-SECRET-KEY-1` + 58 bech32 characters, upper case). */
export function isAgeIdentity(text: string): boolean {
  return text === text.toUpperCase() && bech32Valid(text, 'age-secret-key-', 58);
}

/** The URL with its password replaced by `***` (or the userinfo, when it does not parse). */
function hideUrlPassword(raw: string): string {
  try {
    const u = new URL(raw);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return raw.replace(/\/\/[^/@]*@/, '//***@');
  }
}

const isLoopback = (host: string) => host === 'localhost' || host === '[::1]' || /^127(\.\d{1,3}){3}$/.test(host);

function webhookKind(u: URL): WebhookKind {
  const host = u.hostname.toLowerCase();
  if (host === 'hooks.slack.com') return 'slack';
  if (
    ['discord.com', 'discordapp.com', 'canary.discord.com', 'ptb.discord.com'].includes(host) &&
    u.pathname.startsWith('/api/webhooks/')
  ) {
    return 'discord';
  }
  return 'generic';
}

// ---------- zod schemas, one per kind of value ----------

const custom = (ctx: z.RefinementCtx, message: string) => {
  ctx.addIssue({ code: 'custom', message });
  return z.NEVER;
};

const wholeNumber = (min: number, max: number, expected: string) =>
  z.string().transform((s, ctx) => {
    if (!/^\d+$/.test(s)) return custom(ctx, `expected ${expected}`);
    const n = Number(s);
    if (n < min || n > max) return custom(ctx, `expected ${expected}`);
    return n;
  });

const retentionDays = wholeNumber(1, 100_000, 'a whole number of days >= 1 (e.g. 7)');

const bool = z.string().transform((s, ctx) => {
  const v = s.toLowerCase();
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  return custom(ctx, 'expected true or false');
});

const pathValue = z.string().transform((s, ctx) => (s.includes('\0') ? custom(ctx, 'expected a path without NUL bytes') : s));
const dirValue = pathValue.transform((s) => (isAbsolute(s) ? s : resolve(s)));

const cronValue = z.string().transform((s, ctx) => {
  let job: Cron | undefined;
  try {
    job = new Cron(s, { paused: true, mode: '5-or-6-parts' });
    if (job.nextRun() === null) return custom(ctx, 'the cron expression never fires');
    return s;
  } catch (error) {
    const why = error instanceof Error ? error.message.replace(/^CronPattern: /, '') : String(error);
    return custom(ctx, `expected a cron expression like "0 2 * * *" (minute hour day month weekday): ${why}`);
  } finally {
    job?.stop();
  }
});

const timeZoneValue = z.string().transform((s, ctx) => {
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: s }).resolvedOptions().timeZone;
  } catch {
    return custom(ctx, 'expected an IANA time zone name such as "UTC" or "Asia/Seoul"');
  }
});

const commaList = (s: string) =>
  [...new Set(s.split(',').map((x) => x.trim()).filter((x) => x !== ''))];

const enumList = <T extends string>(allowed: readonly T[], extra: Record<string, readonly T[]> = {}) =>
  z.string().transform((s, ctx) => {
    const out: T[] = [];
    for (const item of commaList(s)) {
      const v = item.toLowerCase();
      if (extra[v]) out.push(...extra[v]!);
      else if ((allowed as readonly string[]).includes(v)) out.push(v as T);
      else return custom(ctx, `unknown value "${item}"; expected a comma list of ${allowed.join(', ')}`);
    }
    if (out.length === 0) return custom(ctx, `expected a comma list of ${allowed.join(', ')}`);
    return [...new Set(out)];
  });

const emailSchema = z.email({ pattern: z.regexes.html5Email });

const emailList = z.string().transform((s, ctx) => {
  const list = commaList(s);
  const bad = list.filter((a) => !emailSchema.safeParse(a).success);
  if (bad.length > 0) return custom(ctx, `not an email address: ${bad.map((b) => JSON.stringify(b)).join(', ')}`);
  if (list.length === 0) return custom(ctx, 'expected a comma list of email addresses');
  return list;
});

const fromAddress = z.string().transform((s, ctx) => {
  const m = /^(.*)<([^<>]+)>$/.exec(s);
  const addr = m ? m[2]!.trim() : s;
  if (!emailSchema.safeParse(addr).success) return custom(ctx, 'expected an email address, or "Name <address>"');
  return s;
});

const urlValue = (protocols: string[], example: string) =>
  z.string().transform((s, ctx) => {
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      return custom(ctx, `expected a URL like ${example}`);
    }
    if (!protocols.includes(u.protocol)) {
      return custom(ctx, `expected a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')} like ${example}, got ${u.protocol}//`);
    }
    return s;
  });

const postgresUrl = urlValue(['postgres:', 'postgresql:'], 'postgresql://user:password@host:5432/scholaria');
const redisUrl = urlValue(['redis:', 'rediss:'], 'redis://:password@host:6379/0').transform((s, ctx) => {
  const path = new URL(s).pathname;
  if (path !== '' && path !== '/' && !/^\/\d+$/.test(path)) return custom(ctx, 'the path must be a database number like /0');
  return s;
});
const httpUrl = urlValue(['http:', 'https:'], 'http://qdrant:6333');
const s3Endpoint = urlValue(['http:', 'https:'], 'https://<account>.r2.cloudflarestorage.com or http://minio:9000');
const smtpUrl = urlValue(['smtp:', 'smtps:'], 'smtps://user:password@smtp.example.com:465');

const webhookUrl = z.string().transform((s, ctx) => {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return custom(ctx, 'expected an https:// webhook URL');
  }
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && isLoopback(u.hostname))) {
    return custom(ctx, 'expected an https:// URL (plain http is allowed only to localhost)');
  }
  return { url: s, kind: webhookKind(u) };
});

const setPrefix = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]*$/, {
  message: 'expected letters, digits, "_" and "-", starting with a letter or digit',
});

const hostValue = z.string().transform((s, ctx) => {
  if (s.includes('://')) return custom(ctx, 'expected a host name, not a URL (use SMTP_URL for URLs)');
  if (!z.regexes.hostname.test(s) && !z.regexes.ipv4.test(s) && !/^\[?[0-9a-fA-F:]+\]?$/.test(s)) {
    return custom(ctx, 'expected a host name like smtp.example.com');
  }
  return s;
});

const ageRecipients = z.string().transform((s, ctx) => {
  const list = commaList(s);
  const bad = list.filter((r) => !isAgeRecipient(r));
  if (bad.length > 0) {
    return custom(
      ctx,
      `not an age X25519 recipient (age1... with a valid checksum, as printed by age-keygen): ${bad.map((b) => JSON.stringify(b.length > 70 ? `${b.slice(0, 67)}...` : b)).join(', ')}`,
    );
  }
  if (list.length === 0) return custom(ctx, 'expected a comma list of age recipients');
  return list;
});

const ageIdentity = z.string().transform((s, ctx) =>
  isAgeIdentity(s) ? s : custom(ctx, 'expected an age identity: AGE-SECRET-KEY-1 followed by 58 characters, as written by age-keygen'),
);

const s3Bucket = z
  .string()
  .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, { message: 'expected an S3 bucket name: 3-63 lowercase letters, digits, "." and "-"' });

const s3Prefix = z.string().transform((s, ctx) => {
  const p = s.replace(/^\/+|\/+$/g, '');
  if (p.includes('\0') || p.includes('\\') || p.split('/').some((seg) => seg === '..' || seg === '.' || seg === '')) {
    return custom(ctx, 'expected a "/"-separated key prefix without "..", ".", empty segments or backslashes');
  }
  return p;
});

const s3Region = z.string().regex(/^[a-z0-9-]+$/, { message: 'expected a region name like us-east-1 (or auto for R2)' });

const SCHEMAS = {
  BACKUP_DIR: dirValue,
  BACKUP_LOG_DIR: dirValue,
  BACKUP_DAILY_RETENTION: retentionDays,
  BACKUP_WEEKLY_RETENTION: retentionDays,
  BACKUP_MONTHLY_RETENTION: retentionDays,
  BACKUP_DAILY_SCHEDULE: cronValue,
  BACKUP_WEEKLY_SCHEDULE: cronValue,
  BACKUP_MONTHLY_SCHEDULE: cronValue,
  BACKUP_TIMEZONE: timeZoneValue,
  BACKUP_SET_PREFIX: setPrefix,
  BACKUP_COMPONENTS: enumList(COMPONENTS),
  BACKUP_CONCURRENCY: wholeNumber(1, 16, 'a whole number from 1 to 16'),
  BACKUP_MIN_FREE_DISK: z.string().transform((s, ctx) => {
    const r = byteSizeProblem(s);
    return typeof r === 'string' ? custom(ctx, r) : r;
  }),
  BACKUP_METRICS_PORT: wholeNumber(1, 65_535, 'a port number from 1 to 65535'),
  BACKUP_NOTIFY_EMAIL: emailList,
  BACKUP_NOTIFY_FROM: fromAddress,
  BACKUP_NOTIFY_WEBHOOK: webhookUrl,
  BACKUP_NOTIFY_ON: enumList(NOTIFY_ON, { all: NOTIFY_ON }),
  SMTP_URL: smtpUrl,
  SMTP_HOST: hostValue,
  SMTP_PORT: wholeNumber(1, 65_535, 'a port number from 1 to 65535'),
  SMTP_USER: z.string(),
  SMTP_PASSWORD: z.string(),
  SMTP_SECURE: bool,
  BACKUP_ENCRYPTION_RECIPIENTS: ageRecipients,
  BACKUP_ENCRYPTION_IDENTITY_FILE: pathValue,
  BACKUP_ENCRYPTION_IDENTITY: ageIdentity,
  BACKUP_ENCRYPTION_PASSPHRASE: z.string(),
  DATABASE_URL: postgresUrl,
  PG_DUMP_PATH: pathValue,
  PG_BIN_DIR: pathValue,
  REDIS_URL: redisUrl,
  QDRANT_URL: httpUrl,
  QDRANT_API_KEY: z.string().regex(/^[^\s\p{Cc}]+$/u, { message: 'expected a key without spaces or control characters' }),
  BACKUP_S3_BUCKET: s3Bucket,
  BACKUP_S3_PREFIX: s3Prefix,
  BACKUP_S3_REGION: s3Region,
  BACKUP_S3_ENDPOINT: s3Endpoint,
  BACKUP_S3_FORCE_PATH_STYLE: bool,
  BACKUP_S3_PROVIDER: z.string().transform((s, ctx) => {
    const v = s.toLowerCase() as S3Provider;
    return S3_PROVIDERS.includes(v) ? v : custom(ctx, `expected one of ${S3_PROVIDERS.join(', ')}`);
  }),
} satisfies Record<(typeof ENV_VARIABLES)[number], z.ZodType<unknown, string>>;

type Parsed = { [K in keyof typeof SCHEMAS]?: z.output<(typeof SCHEMAS)[K]> };

function shown(variable: string, raw: string): string | undefined {
  if (SECRET_VARIABLES.has(variable)) return undefined;
  const value = URL_VARIABLES.has(variable) ? hideUrlPassword(raw) : raw;
  return JSON.stringify(value.length > 200 ? `${value.slice(0, 197)}...` : value);
}

function formatIssue(i: EnvIssue): string {
  const value = i.value !== undefined ? `=${i.value}` : SECRET_VARIABLES.has(i.variable) ? ' (value hidden)' : '';
  return `${i.variable}${value}: ${i.message}`;
}

function levenshtein(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}

/**
 * Reads and checks the environment. Throws one ConfigError listing every invalid variable
 * (`issues` as text, `details.issues` as `EnvIssue[]`); returns a plain object otherwise.
 */
export function loadEnvConfig(env: Record<string, string | undefined> = process.env): EnvConfig {
  const issues: EnvIssue[] = [];
  const warnings: string[] = [];
  const raw: Partial<Record<keyof typeof SCHEMAS, string>> = {};
  const parsed: Parsed = {};

  for (const name of ENV_VARIABLES) {
    const value = env[name];
    if (value === undefined || value.trim() === '') continue;
    const text = UNTRIMMED.has(name) ? value : value.trim();
    raw[name] = text;
    const result = (SCHEMAS[name] as z.ZodType<unknown, string>).safeParse(text);
    if (result.success) (parsed as Record<string, unknown>)[name] = result.data;
    else {
      const value = shown(name, text);
      issues.push({ variable: name, ...(value !== undefined ? { value } : {}), message: result.error.issues.map((i) => i.message).join('; ') });
    }
  }
  const isSet = (name: keyof typeof SCHEMAS) => raw[name] !== undefined;
  const problem = (variable: keyof typeof SCHEMAS, message: string) => {
    // One entry per variable: a second problem with the same variable extends the first.
    const existing = issues.find((i) => i.variable === variable);
    if (existing) {
      existing.message += `; also ${message}`;
      return;
    }
    const value = raw[variable] === undefined ? undefined : shown(variable, raw[variable]);
    issues.push({ variable, ...(value !== undefined ? { value } : {}), message });
  };

  // Components: default to those with a URL; an explicit list needs each URL.
  const urls: Record<EnvComponent, keyof typeof SCHEMAS> = { postgres: 'DATABASE_URL', redis: 'REDIS_URL', qdrant: 'QDRANT_URL' };
  let components: EnvComponent[];
  if (parsed.BACKUP_COMPONENTS) {
    components = parsed.BACKUP_COMPONENTS;
    for (const c of components) {
      if (!isSet(urls[c])) problem('BACKUP_COMPONENTS', `includes ${c}, but ${urls[c]} is not set`);
    }
  } else {
    components = COMPONENTS.filter((c) => isSet(urls[c]));
    if (!isSet('BACKUP_COMPONENTS') && components.length === 0) {
      warnings.push('No component to back up: set DATABASE_URL, REDIS_URL and/or QDRANT_URL.');
    }
  }

  // SMTP: either SMTP_URL or SMTP_HOST with its companions.
  let smtp: SmtpEnvConfig | undefined;
  if (isSet('SMTP_URL')) {
    for (const v of ['SMTP_HOST', 'SMTP_PORT', 'SMTP_SECURE'] as const) {
      if (isSet(v)) problem(v, 'conflicts with SMTP_URL; put the host, port and scheme in SMTP_URL or unset SMTP_URL');
    }
    if (parsed.SMTP_URL) {
      const u = new URL(parsed.SMTP_URL);
      const secure = u.protocol === 'smtps:';
      const urlUser = u.username ? decodeURIComponent(u.username) : undefined;
      const urlPassword = u.password ? decodeURIComponent(u.password) : undefined;
      if ((urlUser || urlPassword) && (isSet('SMTP_USER') || isSet('SMTP_PASSWORD'))) {
        problem('SMTP_USER', 'credentials are given both in SMTP_URL and in SMTP_USER/SMTP_PASSWORD; keep one');
      }
      smtp = {
        url: parsed.SMTP_URL,
        host: u.hostname,
        port: u.port ? Number(u.port) : secure ? 465 : 587,
        secure,
        ...((urlUser ?? parsed.SMTP_USER) !== undefined ? { user: urlUser ?? parsed.SMTP_USER } : {}),
        ...((urlPassword ?? parsed.SMTP_PASSWORD) !== undefined ? { password: urlPassword ?? parsed.SMTP_PASSWORD } : {}),
      };
      if (!u.hostname) problem('SMTP_URL', 'has no host name');
    }
  } else if (isSet('SMTP_HOST')) {
    if (parsed.SMTP_HOST) {
      const port = parsed.SMTP_PORT ?? (parsed.SMTP_SECURE ? 465 : 587);
      const secure = parsed.SMTP_SECURE ?? port === 465;
      smtp = {
        host: parsed.SMTP_HOST,
        port,
        secure,
        ...(parsed.SMTP_USER !== undefined ? { user: parsed.SMTP_USER } : {}),
        ...(parsed.SMTP_PASSWORD !== undefined ? { password: parsed.SMTP_PASSWORD } : {}),
      };
    }
  } else {
    for (const v of ['SMTP_PORT', 'SMTP_USER', 'SMTP_PASSWORD', 'SMTP_SECURE'] as const) {
      if (isSet(v)) problem(v, 'is set but SMTP_HOST is not; set SMTP_HOST (or SMTP_URL)');
    }
  }
  if (!isSet('SMTP_URL') && isSet('SMTP_HOST') && isSet('SMTP_PASSWORD') && !isSet('SMTP_USER')) {
    problem('SMTP_PASSWORD', 'is set but SMTP_USER is not');
  }
  if (isSet('BACKUP_NOTIFY_EMAIL') && !isSet('SMTP_URL') && !isSet('SMTP_HOST')) {
    warnings.push('BACKUP_NOTIFY_EMAIL is set but neither SMTP_URL nor SMTP_HOST: email notifications cannot be sent.');
  }

  // Encryption: recipients or a passphrase to encrypt; identities only decrypt.
  let encryption: EnvConfig['encryption'];
  if (isSet('BACKUP_ENCRYPTION_RECIPIENTS') && isSet('BACKUP_ENCRYPTION_PASSPHRASE')) {
    problem('BACKUP_ENCRYPTION_PASSPHRASE', 'cannot be combined with BACKUP_ENCRYPTION_RECIPIENTS (age encrypts to recipients or to a passphrase, not both); unset one');
  }
  if (
    isSet('BACKUP_ENCRYPTION_RECIPIENTS') ||
    isSet('BACKUP_ENCRYPTION_PASSPHRASE') ||
    isSet('BACKUP_ENCRYPTION_IDENTITY') ||
    isSet('BACKUP_ENCRYPTION_IDENTITY_FILE')
  ) {
    encryption = {
      recipients: parsed.BACKUP_ENCRYPTION_RECIPIENTS ?? [],
      ...(parsed.BACKUP_ENCRYPTION_IDENTITY_FILE !== undefined ? { identityFile: parsed.BACKUP_ENCRYPTION_IDENTITY_FILE } : {}),
      ...(parsed.BACKUP_ENCRYPTION_IDENTITY !== undefined ? { identity: parsed.BACKUP_ENCRYPTION_IDENTITY } : {}),
      ...(parsed.BACKUP_ENCRYPTION_PASSPHRASE !== undefined ? { passphrase: parsed.BACKUP_ENCRYPTION_PASSPHRASE } : {}),
    };
    if (!isSet('BACKUP_ENCRYPTION_RECIPIENTS') && !isSet('BACKUP_ENCRYPTION_PASSPHRASE')) {
      warnings.push('An age identity is set but no BACKUP_ENCRYPTION_RECIPIENTS or passphrase: new backups will not be encrypted (the identity is used for restores).');
    }
  }

  // S3: any BACKUP_S3_* needs the bucket; non-AWS providers need an endpoint.
  let s3: EnvConfig['s3'];
  const s3Vars = ENV_VARIABLES.filter((v) => v.startsWith('BACKUP_S3_'));
  if (s3Vars.some(isSet)) {
    const provider = parsed.BACKUP_S3_PROVIDER ?? 'aws';
    if (!isSet('BACKUP_S3_BUCKET')) {
      problem('BACKUP_S3_BUCKET', `is required when ${s3Vars.filter(isSet).join(', ')} ${s3Vars.filter(isSet).length > 1 ? 'are' : 'is'} set`);
    }
    if (provider !== 'aws' && !isSet('BACKUP_S3_ENDPOINT')) {
      problem('BACKUP_S3_ENDPOINT', `is required for BACKUP_S3_PROVIDER=${provider} (e.g. https://<account>.r2.cloudflarestorage.com, http://minio:9000)`);
    }
    if (parsed.BACKUP_S3_BUCKET) {
      s3 = {
        bucket: parsed.BACKUP_S3_BUCKET,
        ...(parsed.BACKUP_S3_PREFIX ? { prefix: parsed.BACKUP_S3_PREFIX } : {}),
        ...(parsed.BACKUP_S3_REGION !== undefined ? { region: parsed.BACKUP_S3_REGION } : {}),
        ...(parsed.BACKUP_S3_ENDPOINT !== undefined ? { endpoint: parsed.BACKUP_S3_ENDPOINT } : {}),
        forcePathStyle: parsed.BACKUP_S3_FORCE_PATH_STYLE ?? provider === 'minio',
        provider,
      };
    }
  }

  if (isSet('QDRANT_API_KEY') && !isSet('QDRANT_URL')) warnings.push('QDRANT_API_KEY is set but QDRANT_URL is not; it is ignored.');
  for (const v of ['PG_DUMP_PATH', 'PG_BIN_DIR'] as const) {
    if (isSet(v) && !isSet('DATABASE_URL')) warnings.push(`${v} is set but DATABASE_URL is not; it is ignored.`);
  }
  const webhook = parsed.BACKUP_NOTIFY_WEBHOOK;
  if (webhook?.kind === 'slack' && !/^\/(services|triggers|workflows)\/[^/]+/.test(new URL(webhook.url).pathname)) {
    warnings.push('BACKUP_NOTIFY_WEBHOOK points at hooks.slack.com but does not look like an incoming webhook (https://hooks.slack.com/services/...).');
  }
  if (isSet('BACKUP_NOTIFY_ON') && !isSet('BACKUP_NOTIFY_EMAIL') && !isSet('BACKUP_NOTIFY_WEBHOOK')) {
    warnings.push('BACKUP_NOTIFY_ON is set but no notifier is configured (BACKUP_NOTIFY_EMAIL, BACKUP_NOTIFY_WEBHOOK).');
  }
  const known = new Set<string>(ENV_VARIABLES);
  for (const name of Object.keys(env)) {
    if (known.has(name) || !(name.startsWith('BACKUP_') || name.startsWith('SMTP_'))) continue;
    const guess = ENV_VARIABLES.find((k) => levenshtein(k, name) <= 2);
    if (guess) warnings.push(`Unknown variable ${name}; did you mean ${guess}?`);
  }

  if (issues.length > 0) {
    throw new ConfigError(
      `Invalid environment configuration: ${issues.length} variable${issues.length > 1 ? 's' : ''} to fix`,
      issues.map(formatIssue),
      {
        hint: 'Fix the variables listed above in .env or the container environment (empty values count as unset); see the table in the docs for what each accepts.',
        details: { issues },
      },
    );
  }

  const retentionDaysValue = {
    daily: parsed.BACKUP_DAILY_RETENTION ?? 7,
    weekly: parsed.BACKUP_WEEKLY_RETENTION ?? 30,
    monthly: parsed.BACKUP_MONTHLY_RETENTION ?? 365,
  };
  return {
    backupDir: parsed.BACKUP_DIR ?? '/backup',
    logDir: parsed.BACKUP_LOG_DIR ?? '/var/log/scholaria',
    setPrefix: parsed.BACKUP_SET_PREFIX ?? 'scholaria_backup',
    timeZone: parsed.BACKUP_TIMEZONE ?? 'UTC',
    retentionDays: retentionDaysValue,
    retention: retentionFromDays(retentionDaysValue),
    schedules: {
      daily: parsed.BACKUP_DAILY_SCHEDULE ?? '0 2 * * *',
      weekly: parsed.BACKUP_WEEKLY_SCHEDULE ?? '0 3 * * 0',
      monthly: parsed.BACKUP_MONTHLY_SCHEDULE ?? '0 4 1 * *',
    },
    components,
    concurrency: parsed.BACKUP_CONCURRENCY ?? 2,
    minFreeDiskBytes: parsed.BACKUP_MIN_FREE_DISK ?? 2 ** 30,
    ...(parsed.BACKUP_METRICS_PORT !== undefined ? { metricsPort: parsed.BACKUP_METRICS_PORT } : {}),
    notify: {
      email: parsed.BACKUP_NOTIFY_EMAIL ?? [],
      from: parsed.BACKUP_NOTIFY_FROM ?? `backup@${hostname()}`,
      ...(webhook ? { webhook } : {}),
      on: parsed.BACKUP_NOTIFY_ON ?? ['success', 'partial', 'failure'],
    },
    ...(smtp ? { smtp } : {}),
    ...(encryption ? { encryption } : {}),
    ...(parsed.DATABASE_URL
      ? {
          postgres: {
            url: parsed.DATABASE_URL,
            ...(parsed.PG_DUMP_PATH !== undefined ? { pgDumpPath: parsed.PG_DUMP_PATH } : {}),
            ...(parsed.PG_BIN_DIR !== undefined ? { pgBinDir: parsed.PG_BIN_DIR } : {}),
          },
        }
      : {}),
    ...(parsed.REDIS_URL ? { redis: { url: parsed.REDIS_URL } } : {}),
    ...(parsed.QDRANT_URL
      ? { qdrant: { url: parsed.QDRANT_URL, ...(parsed.QDRANT_API_KEY !== undefined ? { apiKey: parsed.QDRANT_API_KEY } : {}) } }
      : {}),
    ...(s3 ? { s3 } : {}),
    warnings,
  };
}

function urlSecrets(raw: string | undefined): string[] {
  if (!raw) return [];
  try {
    const u = new URL(raw);
    if (!u.password) return [];
    const out = [u.password];
    try {
      out.push(decodeURIComponent(u.password));
    } catch {
      // a malformed escape: the raw form is enough
    }
    return out;
  } catch {
    return [];
  }
}

/**
 * Every secret value in the configuration, for redaction: passwords (also inside URLs, raw and
 * percent-decoded), the Qdrant API key, the age identity and passphrase, and the webhook URL
 * (its path is the token).
 */
export function secretsFromEnvConfig(config: EnvConfig): string[] {
  const out: string[] = [];
  out.push(...urlSecrets(config.postgres?.url));
  out.push(...urlSecrets(config.redis?.url));
  out.push(...urlSecrets(config.qdrant?.url));
  out.push(...urlSecrets(config.smtp?.url));
  out.push(...urlSecrets(config.s3?.endpoint));
  if (config.smtp?.password) out.push(config.smtp.password);
  if (config.qdrant?.apiKey) out.push(config.qdrant.apiKey);
  if (config.encryption?.identity) out.push(config.encryption.identity);
  if (config.encryption?.passphrase) out.push(config.encryption.passphrase);
  if (config.notify.webhook) {
    const u = new URL(config.notify.webhook.url);
    out.push(config.notify.webhook.url);
    const token = `${u.pathname}${u.search}`.replace(/^\/+/, '');
    if (token.length >= 8) out.push(token);
  }
  return [...new Set(out.filter((s) => s !== ''))];
}
