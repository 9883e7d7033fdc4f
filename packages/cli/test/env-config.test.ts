import { execFileSync } from 'node:child_process';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, defineConfig, parseByteSize } from '@scholaria/backup-core';
import { isAgeIdentity, isAgeRecipient } from '@scholaria/backup-age';
import { ENV_VARIABLES, loadEnvConfig, secretsFromEnvConfig, type EnvIssue } from '../src/env-config.js';

function ageKeyPair(): { recipient: string; identity: string } {
  const out = execFileSync('age-keygen', [], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const recipient = /# public key: (age1\S+)/.exec(out)![1]!;
  const identity = /^(AGE-SECRET-KEY-1\S+)$/m.exec(out)![1]!;
  return { recipient, identity };
}
const keys = ageKeyPair();
const keys2 = ageKeyPair();

function configError(env: Record<string, string>): ConfigError {
  try {
    loadEnvConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(Object.keys(env))}`);
}

function issuesOf(error: ConfigError): EnvIssue[] {
  return (error.details as { issues: EnvIssue[] }).issues;
}

describe('loadEnvConfig defaults', () => {
  it('fills every default from an empty environment', () => {
    const config = loadEnvConfig({});
    expect(config).toEqual({
      backupDir: '/backup',
      logDir: '/var/log/scholaria',
      setPrefix: 'scholaria_backup',
      timeZone: 'UTC',
      retentionDays: { daily: 7, weekly: 30, monthly: 365 },
      retention: { tiers: { daily: { within: '7d' }, weekly: { within: '30d' }, monthly: { within: '365d' } } },
      schedules: { daily: '0 2 * * *', weekly: '0 3 * * 0', monthly: '0 4 1 * *' },
      components: [],
      minFreeDiskBytes: 1024 ** 3,
      notify: { email: [], from: `backup@${hostname()}`, on: ['success', 'partial', 'failure'] },
      warnings: ['No component to back up: set DATABASE_URL, REDIS_URL and/or QDRANT_URL.'],
    });
  });

  it('treats empty and blank values as unset', () => {
    const env = Object.fromEntries(ENV_VARIABLES.map((name, i) => [name, i % 2 ? '' : '   ']));
    expect(loadEnvConfig(env)).toEqual(loadEnvConfig({}));
  });

  it('reads the seed .env as written in the strategy document', () => {
    const config = loadEnvConfig({
      BACKUP_DAILY_RETENTION: '7',
      BACKUP_WEEKLY_RETENTION: '30',
      BACKUP_MONTHLY_RETENTION: '365',
      BACKUP_NOTIFY_EMAIL: 'admin@example.com',
      BACKUP_NOTIFY_WEBHOOK: 'https://hooks.slack.com/...',
    });
    expect(config.notify.email).toEqual(['admin@example.com']);
    expect(config.notify.webhook).toEqual({ url: 'https://hooks.slack.com/...', kind: 'slack' });
    expect(config.warnings).toContain('BACKUP_NOTIFY_EMAIL is set but neither SMTP_URL nor SMTP_HOST: email notifications cannot be sent.');
    expect(config.warnings.some((w) => w.includes('does not look like an incoming webhook'))).toBe(true);
  });
});

describe('loadEnvConfig happy paths', () => {
  const full = {
    BACKUP_DIR: '/srv/backup',
    BACKUP_DAILY_RETENTION: '10',
    BACKUP_WEEKLY_RETENTION: '60',
    BACKUP_MONTHLY_RETENTION: '730',
    BACKUP_NOTIFY_EMAIL: 'ops@example.com, admin@example.com,,ops@example.com',
    BACKUP_NOTIFY_WEBHOOK: 'https://discord.com/api/webhooks/123/abcdefTOKEN',
    BACKUP_NOTIFY_ON: 'start, failure',
    BACKUP_NOTIFY_FROM: 'Scholaria Backup <backup@example.com>',
    BACKUP_TIMEZONE: 'asia/seoul',
    BACKUP_LOG_DIR: '/var/log/backup',
    BACKUP_SET_PREFIX: 'prod-scholaria_1',
    BACKUP_COMPONENTS: 'postgres,qdrant',
    BACKUP_DAILY_SCHEDULE: '30 1 * * *',
    BACKUP_WEEKLY_SCHEDULE: '0 3 * * SUN',
    BACKUP_MONTHLY_SCHEDULE: '0 0 4 1 * *',
    BACKUP_CONCURRENCY: '16',
    BACKUP_MIN_FREE_DISK: '500MiB',
    BACKUP_ENCRYPTION_RECIPIENTS: `${keys.recipient}, ${keys2.recipient}`,
    BACKUP_ENCRYPTION_IDENTITY_FILE: '/run/secrets/age.key',
    BACKUP_ENCRYPTION_IDENTITY: keys.identity,
    DATABASE_URL: 'postgresql://scholaria:p%40ss%3Aword@db:5432/scholaria',
    PG_DUMP_PATH: '/usr/lib/postgresql/15/bin/pg_dump',
    PG_BIN_DIR: '/usr/lib/postgresql/15/bin',
    REDIS_URL: 'rediss://:redis-secret@redis:6380/2',
    QDRANT_URL: 'https://qdrant.internal:6333',
    QDRANT_API_KEY: 'qdrant-key-123',
    BACKUP_S3_BUCKET: 'scholaria-backups',
    BACKUP_S3_PREFIX: '/prod/daily/',
    BACKUP_S3_REGION: 'auto',
    BACKUP_S3_ENDPOINT: 'https://acc.r2.cloudflarestorage.com',
    BACKUP_S3_FORCE_PATH_STYLE: 'true',
    BACKUP_S3_PROVIDER: 'r2',
    SMTP_HOST: 'smtp.example.com',
    SMTP_PORT: '2525',
    SMTP_USER: 'mailer',
    SMTP_PASSWORD: ' smtp pass ',
    SMTP_SECURE: 'false',
    BACKUP_METRICS_PORT: '9464',
  };

  it('reads every variable', () => {
    const config = loadEnvConfig(full);
    expect(config).toEqual({
      backupDir: '/srv/backup',
      logDir: '/var/log/backup',
      setPrefix: 'prod-scholaria_1',
      timeZone: 'Asia/Seoul',
      retentionDays: { daily: 10, weekly: 60, monthly: 730 },
      retention: { tiers: { daily: { within: '10d' }, weekly: { within: '60d' }, monthly: { within: '730d' } } },
      schedules: { daily: '30 1 * * *', weekly: '0 3 * * SUN', monthly: '0 0 4 1 * *' },
      components: ['postgres', 'qdrant'],
      concurrency: 16,
      minFreeDiskBytes: 500 * 1024 * 1024,
      metricsPort: 9464,
      notify: {
        email: ['ops@example.com', 'admin@example.com'],
        from: 'Scholaria Backup <backup@example.com>',
        webhook: { url: 'https://discord.com/api/webhooks/123/abcdefTOKEN', kind: 'discord' },
        on: ['start', 'failure'],
      },
      smtp: { host: 'smtp.example.com', port: 2525, secure: false, user: 'mailer', password: ' smtp pass ' },
      encryption: {
        recipients: [keys.recipient, keys2.recipient],
        identityFile: '/run/secrets/age.key',
        identity: keys.identity,
      },
      postgres: {
        url: 'postgresql://scholaria:p%40ss%3Aword@db:5432/scholaria',
        pgDumpPath: '/usr/lib/postgresql/15/bin/pg_dump',
        pgBinDir: '/usr/lib/postgresql/15/bin',
      },
      redis: { url: 'rediss://:redis-secret@redis:6380/2' },
      qdrant: { url: 'https://qdrant.internal:6333', apiKey: 'qdrant-key-123' },
      s3: {
        bucket: 'scholaria-backups',
        prefix: 'prod/daily',
        region: 'auto',
        endpoint: 'https://acc.r2.cloudflarestorage.com',
        forcePathStyle: true,
        provider: 'r2',
      },
      warnings: [],
    });
  });

  it('lists every secret for redaction, including passwords inside URLs', () => {
    const secrets = secretsFromEnvConfig(loadEnvConfig(full));
    expect(secrets).toEqual(
      expect.arrayContaining([
        'p%40ss%3Aword',
        'p@ss:word',
        'redis-secret',
        'qdrant-key-123',
        ' smtp pass ',
        keys.identity,
        'https://discord.com/api/webhooks/123/abcdefTOKEN',
        'api/webhooks/123/abcdefTOKEN',
      ]),
    );
    expect(secrets).not.toContain('mailer');
    expect(secrets).not.toContain(keys.recipient);
    const viaUrl = loadEnvConfig({ SMTP_URL: 'smtps://u:url-pass@mail.example.com', BACKUP_ENCRYPTION_PASSPHRASE: 'correct horse' });
    expect(secretsFromEnvConfig(viaUrl)).toEqual(expect.arrayContaining(['url-pass', 'correct horse']));
    expect(secretsFromEnvConfig(loadEnvConfig({}))).toEqual([]);
  });

  it('defaults components to those with a URL', () => {
    expect(loadEnvConfig({ REDIS_URL: 'redis://r:6379', QDRANT_URL: 'http://q:6333' }).components).toEqual(['redis', 'qdrant']);
    expect(loadEnvConfig({ DATABASE_URL: 'postgres:///scholaria?host=/var/run/postgresql' }).components).toEqual(['postgres']);
  });

  it('tells the webhook kind from the URL and allows plain http only to loopback', () => {
    const kind = (url: string) => loadEnvConfig({ BACKUP_NOTIFY_WEBHOOK: url }).notify.webhook?.kind;
    expect(kind('https://hooks.slack.com/services/T0/B0/XYZ')).toBe('slack');
    expect(kind('https://discordapp.com/api/webhooks/1/abc')).toBe('discord');
    expect(kind('https://discord.com/channels/1/2')).toBe('generic');
    expect(kind('https://example.com/hook')).toBe('generic');
    expect(kind('http://127.0.0.1:8080/hook')).toBe('generic');
    expect(kind('http://localhost/hook')).toBe('generic');
  });

  it('reads SMTP_URL with its credentials and the SMTP_HOST defaults', () => {
    expect(loadEnvConfig({ SMTP_URL: 'smtps://user%40x:pw@mail.example.com' }).smtp).toEqual({
      url: 'smtps://user%40x:pw@mail.example.com',
      host: 'mail.example.com',
      port: 465,
      secure: true,
      user: 'user@x',
      password: 'pw',
    });
    expect(loadEnvConfig({ SMTP_URL: 'smtp://mail:2525', SMTP_USER: 'u', SMTP_PASSWORD: 'p' }).smtp).toEqual({
      url: 'smtp://mail:2525',
      host: 'mail',
      port: 2525,
      secure: false,
      user: 'u',
      password: 'p',
    });
    expect(loadEnvConfig({ SMTP_HOST: 'mail' }).smtp).toEqual({ host: 'mail', port: 587, secure: false });
    expect(loadEnvConfig({ SMTP_HOST: 'mail', SMTP_PORT: '465' }).smtp).toEqual({ host: 'mail', port: 465, secure: true });
    expect(loadEnvConfig({ SMTP_HOST: 'mail', SMTP_SECURE: '1' }).smtp).toEqual({ host: 'mail', port: 465, secure: true });
  });

  it('reads sizes, notify lists and S3 provider defaults', () => {
    expect(loadEnvConfig({ BACKUP_MIN_FREE_DISK: '1GB' }).minFreeDiskBytes).toBe(1e9);
    expect(loadEnvConfig({ BACKUP_MIN_FREE_DISK: '2048' }).minFreeDiskBytes).toBe(2048);
    expect(loadEnvConfig({ BACKUP_NOTIFY_ON: 'all' }).notify.on).toEqual(['start', 'success', 'partial', 'failure']);
    expect(loadEnvConfig({ BACKUP_S3_BUCKET: 'b-1' }).s3).toEqual({ bucket: 'b-1', forcePathStyle: false, provider: 'aws' });
    expect(loadEnvConfig({ BACKUP_S3_BUCKET: 'b-1', BACKUP_S3_PART_SIZE: '16MiB', BACKUP_S3_QUEUE_SIZE: '2' }).s3).toMatchObject({ partSizeBytes: 16 * 1024 * 1024, queueSize: 2 });
    expect(loadEnvConfig({ BACKUP_S3_BUCKET: 'b-1' }).s3).not.toHaveProperty('partSizeBytes');
    expect(loadEnvConfig({ BACKUP_S3_BUCKET: 'b-1', BACKUP_S3_PROVIDER: 'minio', BACKUP_S3_ENDPOINT: 'http://minio:9000' }).s3).toMatchObject({
      forcePathStyle: true,
      provider: 'minio',
    });
    expect(loadEnvConfig({ BACKUP_DIR: 'relative/dir' }).backupDir).toBe(resolve('relative/dir'));
    expect(parseByteSize('1.5KiB')).toBe(1536);
    expect(() => parseByteSize('1XB', 'minFree')).toThrow(/^minFree: unknown unit "XB"/);
  });

  it('checks age keys made by the real age-keygen, including the bech32 checksum', () => {
    expect(isAgeRecipient(keys.recipient)).toBe(true);
    expect(isAgeIdentity(keys.identity)).toBe(true);
    const last = keys.recipient.at(-1) === 'q' ? 'p' : 'q';
    expect(isAgeRecipient(keys.recipient.slice(0, -1) + last)).toBe(false);
    expect(isAgeRecipient(keys.recipient.toUpperCase())).toBe(false);
    expect(isAgeIdentity(keys.recipient)).toBe(false);
    expect(loadEnvConfig({ BACKUP_ENCRYPTION_IDENTITY: keys.identity }).warnings[1]).toMatch(/new backups will not be encrypted/);
  });

  it('warns about unused settings and likely typos', () => {
    const { warnings } = loadEnvConfig({
      QDRANT_API_KEY: 'k',
      PG_BIN_DIR: '/usr/bin',
      BACKUP_NOTIFY_ON: 'failure',
      BACKUP_DAILY_RETENTON: '7',
      BACKUP_SOMETHING_ELSE_ENTIRELY: 'x',
    });
    expect(warnings).toEqual([
      'No component to back up: set DATABASE_URL, REDIS_URL and/or QDRANT_URL.',
      // In the order of the adapter list (postgres before qdrant).
      'PG_BIN_DIR is set but DATABASE_URL is not; it is ignored.',
      'QDRANT_API_KEY is set but QDRANT_URL is not; it is ignored.',
      'BACKUP_NOTIFY_ON is set but no notifier is configured (BACKUP_NOTIFY_EMAIL, BACKUP_NOTIFY_WEBHOOK).',
      'Unknown variable BACKUP_DAILY_RETENTON; did you mean BACKUP_DAILY_RETENTION?',
    ]);
  });
});

// [variable, bad value, expected message, extra env needed so only this variable is wrong]
const BAD: [string, string, RegExp, Record<string, string>?][] = [
  ['BACKUP_DIR', 'a\0b', /without NUL/],
  ['BACKUP_DAILY_RETENTION', 'seven', /whole number of days >= 1/],
  ['BACKUP_WEEKLY_RETENTION', '0', /whole number of days >= 1/],
  ['BACKUP_MONTHLY_RETENTION', '-5', /whole number of days >= 1/],
  ['BACKUP_NOTIFY_EMAIL', 'admin@example.com, not-an-address', /not an email address: "not-an-address"/],
  ['BACKUP_NOTIFY_WEBHOOK', 'http://hooks.slack.com/services/x', /https:\/\/ URL/],
  ['BACKUP_NOTIFY_ON', 'success,sometimes', /unknown value "sometimes"/],
  ['BACKUP_NOTIFY_FROM', 'Backup <nope>', /email address/],
  ['BACKUP_TIMEZONE', 'Asia/Atlantis', /IANA time zone/],
  ['BACKUP_LOG_DIR', 'x\0', /without NUL/],
  ['BACKUP_SET_PREFIX', '_bad prefix', /letters, digits/],
  ['BACKUP_COMPONENTS', 'postgres,mysql', /unknown value "mysql"/],
  ['BACKUP_DAILY_SCHEDULE', '0 25 * * *', /cron expression.*hour/i],
  ['BACKUP_WEEKLY_SCHEDULE', 'every sunday', /cron expression/],
  ['BACKUP_MONTHLY_SCHEDULE', '0 0 30 2 *', /never fires/],
  ['BACKUP_CONCURRENCY', '17', /1 to 16/],
  ['BACKUP_MIN_FREE_DISK', 'lots', /size in bytes/],
  ['BACKUP_ENCRYPTION_RECIPIENTS', 'age1notarealkey', /age X25519 recipient/],
  ['BACKUP_ENCRYPTION_IDENTITY_FILE', 'k\0ey', /without NUL/],
  ['BACKUP_ENCRYPTION_IDENTITY', 'AGE-SECRET-KEY-1NOTREAL', /age identity/],
  ['BACKUP_ENCRYPTION_PASSPHRASE', 'hunter2-secret', /cannot be combined/, { BACKUP_ENCRYPTION_RECIPIENTS: keys.recipient }],
  ['DATABASE_URL', 'mysql://root:db-secret@db/x', /URL starting with postgres:\/\/ or postgresql:\/\//],
  ['PG_DUMP_PATH', 'pg\0dump', /without NUL/, { DATABASE_URL: 'postgres://db/x' }],
  ['PG_BIN_DIR', '\0', /without NUL/, { DATABASE_URL: 'postgres://db/x' }],
  ['REDIS_URL', 'redis://:redis-secret@r:6379/cache', /database number/],
  ['QDRANT_URL', 'grpc://qdrant:6334', /http:\/\/ or https:\/\//],
  ['QDRANT_API_KEY', 'api secret', /without spaces or control characters/, { QDRANT_URL: 'http://q:6333' }],
  ['QDRANT_PEER_URLS', 'http://q-1:6333', /expected peer=url pairs/, { QDRANT_URL: 'http://q:6333' }],
  ['QDRANT_PEER_URL_TEMPLATE', 'http://fixed:6333', /with \{host\} or \{peer_id\}/, { QDRANT_URL: 'http://q:6333' }],
  ['BACKUP_S3_BUCKET', 'Bad_Bucket', /S3 bucket name/],
  ['BACKUP_S3_PREFIX', 'a/../b', /without "\.\."/, { BACKUP_S3_BUCKET: 'bucket' }],
  ['BACKUP_S3_REGION', 'US East', /region name/, { BACKUP_S3_BUCKET: 'bucket' }],
  ['BACKUP_S3_ENDPOINT', 's3.example.com', /URL like/, { BACKUP_S3_BUCKET: 'bucket' }],
  ['BACKUP_S3_FORCE_PATH_STYLE', 'yes please', /true or false/, { BACKUP_S3_BUCKET: 'bucket' }],
  ['BACKUP_S3_PROVIDER', 'gcs', /expected one of aws, minio, r2, b2/, { BACKUP_S3_BUCKET: 'bucket' }],
  ['BACKUP_S3_PART_SIZE', '4MiB', /must be from 5MiB to 5GiB/, { BACKUP_S3_BUCKET: 'bucket' }],
  ['BACKUP_S3_QUEUE_SIZE', '0', /a whole number from 1 to 64/, { BACKUP_S3_BUCKET: 'bucket' }],
  ['SMTP_URL', 'http://user:smtp-secret@mail', /smtp:\/\/ or smtps:\/\//],
  // Not a URL at all: the userinfo is still hidden.
  ['REDIS_URL', 'redis://:redis-secret@[bad', /URL like/],
  ['SMTP_HOST', 'smtp://mail.example.com', /host name, not a URL/],
  ['SMTP_PORT', '70000', /1 to 65535/, { SMTP_HOST: 'mail' }],
  ['SMTP_USER', 'mailer', /is set but SMTP_HOST is not/],
  ['SMTP_PASSWORD', 'smtp-secret', /is set but SMTP_USER is not/, { SMTP_HOST: 'mail' }],
  ['SMTP_SECURE', 'maybe', /true or false/, { SMTP_HOST: 'mail' }],
  ['BACKUP_METRICS_PORT', '0', /1 to 65535/],
  ['BACKUP_DRILL_SCHEDULE', 'weekly', /cron expression.*or "off"/i],
  ['BACKUP_DRILL_DATABASE_PREFIX', 'Drill-DB', /lower-case letters, digits and "_"/],
  ['BACKUP_DRILL_POSTGRES_URL', 'mysql://root:db-secret@drill/postgres', /URL starting with postgres:\/\/ or postgresql:\/\//],
  ['BACKUP_DRILL_AMCHECK', 'sometimes', /true or false/],
  ['BACKUP_DRILL_REDIS_DB', '15,x', /database numbers separated by commas/],
  ['BACKUP_DRILL_REDIS_URL', 'http://drill:6379/0', /redis:\/\/ or rediss:\/\//],
  ['BACKUP_DRILL_CELERY_QUEUES', 'celery, my queue', /queue names without spaces/],
  ['BACKUP_DRILL_JOIN', 'chunks=chunks', /is not TABLE.COLUMN=COLLECTION/],
  ['BACKUP_DRILL_MAX_MISMATCHES', '0', /1 to 9999/],
  ['BACKUP_ANOMALY_DROP', '2', /fraction above 0 and at most 1/],
  ['BACKUP_PITR', 'sometimes', /on or off/],
  ['BACKUP_PITR_URL', 'mysql://db/x', /postgres/],
  ['BACKUP_WAL_MAX_LAG', 'soon', /duration/],
  ['BACKUP_WAL_SLOT', 'Bad-Slot', /replication slot name/],
  ['BACKUP_WAL_SPOOL_DIR', 'a\0b', /without NUL/],
  ['BACKUP_LEADER_ELECTION', 'on/off', /expected off, auto, postgres or s3/],
  ['BACKUP_LEADER_TTL', '1s', /from 3s to 1h/],
  ['BACKUP_LEADER_NAME', 'my lease', /letters, digits/],
];
const SECRET_VALUES = ['hunter2-secret', 'db-secret', 'redis-secret', 'api secret', 'smtp-secret', 'AGE-SECRET-KEY-1NOTREAL'];
const HIDDEN = ['SMTP_PASSWORD', 'BACKUP_ENCRYPTION_PASSPHRASE', 'BACKUP_ENCRYPTION_IDENTITY', 'BACKUP_NOTIFY_WEBHOOK', 'QDRANT_API_KEY'];

describe('loadEnvConfig errors', () => {
  it('has a bad-value case for every variable', () => {
    const covered = new Set(BAD.map(([v]) => v));
    expect(ENV_VARIABLES.filter((v) => !covered.has(v))).toEqual([]);
  });

  for (const [variable, value, message, extra] of BAD) {
    it(`reports ${variable}`, () => {
      const error = configError({ ...extra, [variable]: value });
      expect(error.code).toBe('CONFIG_INVALID');
      const issues = issuesOf(error);
      expect(issues).toHaveLength(1);
      const issue = issues[0]!;
      expect(issue.variable).toBe(variable);
      expect(issue.message).toMatch(message);
      expect(error.message).toContain(variable);
      expect(error.hint).toBeTruthy();
      for (const secret of SECRET_VALUES) expect(error.message).not.toContain(secret);
      if (HIDDEN.includes(variable)) {
        expect(issue.value).toBeUndefined();
        expect(error.message).toContain(`${variable} (value hidden)`);
      } else if (!SECRET_VALUES.some((s) => value.includes(s))) {
        expect(error.message).toContain(JSON.stringify(value));
      }
    });
  }

  it('reports every bad variable together in one error', () => {
    const env: Record<string, string> = {};
    for (const [variable, value] of BAD) env[variable] = value;
    const error = configError(env);
    const reported = new Set(issuesOf(error).map((i) => i.variable));
    // SMTP_USER and SMTP_PASSWORD are only wrong without an SMTP server or user; here SMTP_URL
    // and SMTP_USER are set, so they are fine.
    const expected = BAD.map(([v]) => v).filter((v) => v !== 'SMTP_USER' && v !== 'SMTP_PASSWORD');
    expect(reported.size).toBe(issuesOf(error).length);
    expect(issuesOf(error).find((i) => i.variable === 'SMTP_HOST')?.message).toBe(
      'expected a host name, not a URL (use SMTP_URL for URLs); also conflicts with SMTP_URL; put the host, port and scheme in SMTP_URL or unset SMTP_URL',
    );
    // With SMTP_URL set, SMTP_HOST/PORT/SECURE also conflict with it; every variable is named.
    for (const v of expected) expect(reported, v).toContain(v);
    expect(error.issues.length).toBe(issuesOf(error).length);
    expect(error.message).toMatch(/^Invalid environment configuration: \d+ variables to fix/);
    for (const secret of SECRET_VALUES) expect(error.message).not.toContain(secret);
    expect(error.message).toContain('DATABASE_URL="mysql://root:***@db/x"');
    expect(configError({ REDIS_URL: 'redis://:redis-secret@[bad' }).message).toContain('REDIS_URL="redis://***@[bad"');
  });

  it('reports cross-variable problems', () => {
    const names = (env: Record<string, string>) => issuesOf(configError(env)).map((i) => `${i.variable}: ${i.message}`);
    expect(names({ BACKUP_COMPONENTS: 'redis' })).toEqual(['BACKUP_COMPONENTS: includes redis, but REDIS_URL is not set']);
    expect(names({ BACKUP_S3_REGION: 'eu-west-1' })).toEqual(['BACKUP_S3_BUCKET: is required when BACKUP_S3_REGION is set']);
    expect(names({ BACKUP_S3_BUCKET: 'bucket', BACKUP_S3_PROVIDER: 'b2' })[0]).toMatch(/^BACKUP_S3_ENDPOINT: is required for BACKUP_S3_PROVIDER=b2/);
    expect(names({ SMTP_URL: 'smtp://mail', SMTP_HOST: 'mail', SMTP_PORT: '25' })).toEqual([
      'SMTP_HOST: conflicts with SMTP_URL; put the host, port and scheme in SMTP_URL or unset SMTP_URL',
      'SMTP_PORT: conflicts with SMTP_URL; put the host, port and scheme in SMTP_URL or unset SMTP_URL',
    ]);
    expect(names({ SMTP_URL: 'smtp://a:b@mail', SMTP_PASSWORD: 'c' })[0]).toMatch(/credentials are given both/);
  });
});

describe('defineConfig', () => {
  it('defineConfig returns its argument unchanged', () => {
    const config = defineConfig({ sources: [], storage: [], schedules: { daily: '0 2 * * *' }, logDir: '/tmp/x', metricsPort: 9000 });
    expect(config.schedules).toEqual({ daily: '0 2 * * *' });
    const same = { sources: [], storage: [] };
    expect(defineConfig(same)).toBe(same);
  });
});
