import { describe, expect, it } from 'vitest';
import { BackupError, type Storage } from '@scholaria/backup-core';
import { scholariaConfig, scholariaEnv } from '../backup.config.js';

const base = {
  DATABASE_URL: 'postgresql://scholaria:s3cret-pw@postgres:5432/scholaria',
  REDIS_URL: 'redis://redis:6379',
  QDRANT_URL: 'http://qdrant:6333',
};

const storageNames = (storage: Storage | Storage[]) => (Array.isArray(storage) ? storage : [storage]).map((s) => s.name);

describe('examples/scholaria backup.config.ts', () => {
  it('the strategy document defaults: three components, /backup, three tiers, Asia/Seoul', () => {
    const config = scholariaConfig(base);
    expect(config.sources.map((s) => s.name)).toEqual(['postgres', 'redis', 'qdrant']);
    expect(storageNames(config.storage)).toEqual(['fs:/backup']);
    expect(config.timeZone).toBe('Asia/Seoul');
    expect(config.retention).toEqual({ tiers: { daily: { within: '7d' }, weekly: { within: '30d' }, monthly: { within: '365d' } } });
    expect(config.schedules).toEqual({ daily: '0 2 * * *', weekly: '0 3 * * 0', monthly: '0 4 1 * *' });
    expect(config.logDir).toBe('/var/log/scholaria');
    expect(config.notifiers).toEqual([]);
    expect(config.codecs?.map((c) => c.name)).toEqual(['zstd']);
    expect(config.secrets).toContain('s3cret-pw');
  });

  it('reads the .env of the strategy document', () => {
    const config = scholariaConfig({
      ...base,
      BACKUP_DIR: '/srv/backup',
      BACKUP_DAILY_RETENTION: '14',
      BACKUP_WEEKLY_RETENTION: '60',
      BACKUP_MONTHLY_RETENTION: '730',
      BACKUP_NOTIFY_EMAIL: 'admin@example.com',
      SMTP_URL: 'smtps://mailer:mail-pw@smtp.example.com:465',
      BACKUP_NOTIFY_WEBHOOK: 'https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX',
      BACKUP_TIMEZONE: 'UTC',
    });
    expect(storageNames(config.storage)).toEqual(['fs:/srv/backup']);
    expect(config.retention?.tiers).toEqual({ daily: { within: '14d' }, weekly: { within: '60d' }, monthly: { within: '730d' } });
    expect(config.notifiers?.map((n) => n.name)).toEqual(['email', 'slack']);
    expect(config.timeZone).toBe('UTC');
    expect(config.secrets).toEqual(expect.arrayContaining(['mail-pw', 'https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX']));
  });

  it('a Discord webhook gets the Discord notifier, S3 adds an off-site copy, recipients add age', () => {
    const config = scholariaConfig({
      ...base,
      BACKUP_NOTIFY_WEBHOOK: 'https://discord.com/api/webhooks/123456/abcdefghijklmnop',
      BACKUP_S3_BUCKET: 'scholaria-backups',
      BACKUP_S3_PREFIX: 'prod',
      BACKUP_S3_REGION: 'ap-northeast-2',
      BACKUP_ENCRYPTION_RECIPIENTS: 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p',
    });
    expect(config.notifiers?.map((n) => n.name)).toEqual(['discord']);
    expect(storageNames(config.storage)).toEqual(['fs:/backup', 's3://scholaria-backups/prod']);
    expect(config.codecs?.map((c) => c.name)).toEqual(['zstd', 'age']);
  });

  it('builds DATABASE_URL from the postgres image variables, encoding the password', () => {
    const env = scholariaEnv({ POSTGRES_USER: 'scholaria', POSTGRES_PASSWORD: 'p@ss/word:1', POSTGRES_DB: 'scholaria' });
    expect(env.DATABASE_URL).toBe('postgresql://scholaria:p%40ss%2Fword%3A1@postgres:5432/scholaria');
    expect(scholariaEnv({ ...base, POSTGRES_PASSWORD: 'other' }).DATABASE_URL).toBe(base.DATABASE_URL);
    const config = scholariaConfig({ POSTGRES_PASSWORD: 'p@ss/word:1', POSTGRES_HOST: 'db.internal', POSTGRES_PORT: '6543' });
    expect(config.sources.map((s) => s.name)).toEqual(['postgres']);
    expect(config.secrets).toContain('p@ss/word:1');
  });

  it('one error lists every invalid variable, without secrets', () => {
    let error: unknown;
    try {
      scholariaConfig({ ...base, BACKUP_DAILY_RETENTION: '0', BACKUP_TIMEZONE: 'Mars/Olympus', SMTP_PASSWORD: 'hidden-pw', BACKUP_WEEKLY_SCHEDULE: 'every sunday' });
    } catch (e) {
      error = e;
    }
    expect(BackupError.isInstance(error)).toBe(true);
    const text = `${(error as BackupError).message}\n${((error as { issues?: string[] }).issues ?? []).join('\n')}`;
    for (const variable of ['BACKUP_DAILY_RETENTION', 'BACKUP_TIMEZONE', 'SMTP_PASSWORD', 'BACKUP_WEEKLY_SCHEDULE']) expect(text).toContain(variable);
    expect(text).not.toContain('hidden-pw');
  });
});
