import { describe, expect, it } from 'vitest';
import { BackupError, createRedactor, redactDeep, redactSecrets, redactUrl } from '@scholaria/backup-core';

describe('createRedactor', () => {
  it('masks configured secrets and their URL- and JSON-encoded forms', () => {
    const redact = createRedactor(['p@ss w0rd!', 'quo"te\\slash']);
    expect(redact('login with p@ss w0rd! failed')).toBe('login with *** failed');
    expect(redact('dsn=...&pw=p%40ss%20w0rd! end')).toBe('dsn=...&pw=*** end');
    expect(redact('form p%40ss+w0rd%21 end')).toBe('form *** end');
    expect(redact(JSON.stringify({ v: 'quo"te\\slash' }))).toBe('{"v":"***"}');
  });

  it('ignores secrets shorter than 4 characters', () => {
    const redact = createRedactor(['ab', 'xyz', '', 'long-enough']);
    expect(redact('ab xyz long-enough')).toBe('ab xyz ***');
  });

  it('masks the longer of two overlapping secrets whole', () => {
    const redact = createRedactor(['secret', 'secret-extended']);
    expect(redact('value secret-extended here')).toBe('value *** here');
  });

  it.each([
    ['postgres://backup:S3cr3t@db:5432/scholaria', 'postgres://backup:***@db:5432/scholaria'],
    ['redis://:hunter22@cache:6379/0', 'redis://:***@cache:6379/0'],
    ['mongodb+srv://u:p@ss@cluster.example/x', 'mongodb+srv://u:***@cluster.example/x'],
    ['smtp://mailer:pw@mail.example.com:587 and a@b.com', 'smtp://mailer:***@mail.example.com:587 and a@b.com'],
    ['PGPASSWORD=abc123 pg_dump -h db', 'PGPASSWORD=*** pg_dump -h db'],
    ["host=db password='two words' user=x", 'host=db password=*** user=x'],
    ['--password=hunter2 --user=x', '--password=*** --user=x'],
    ['AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG', 'AWS_SECRET_ACCESS_KEY=***'],
    ['https://api.example.com/x?token=abc&page=2', 'https://api.example.com/x?token=***&page=2'],
    ['{"password": "a\\"b", "user": "u"}', '{"password": "***", "user": "u"}'],
    ['https://hooks.slack.com/services/T0001/B0002/XXXXYYYYZZZZ', 'https://hooks.slack.com/services/T0001/B0002/***'],
    ['https://hooks.slack.com/workflows/T01/A02/123/abcDEF', 'https://hooks.slack.com/workflows/T01/A02/123/***'],
    ['https://discord.com/api/webhooks/123456789012345678/abcDEF-tok_x', 'https://discord.com/api/webhooks/123456789012345678/***'],
    ['https://discordapp.com/api/v10/webhooks/1/tok?wait=true', 'https://discordapp.com/api/v10/webhooks/1/***?wait=true'],
    ['https://hc-ping.com/0b5f2d1e-1111-2222-3333-444455556666/fail', 'https://hc-ping.com/***/fail'],
    ['key AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGP end', 'key AGE-SECRET-KEY-1*** end'],
    ['Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig', 'Authorization: Bearer ***'],
    ['authorization: basic YmFja3VwOnMzY3IzdA==', 'authorization: basic ***'],
  ])('always masks %s', (input, expected) => {
    expect(createRedactor([])(input)).toBe(expected);
  });

  it.each([
    'password authentication failed for user "backup"',
    'Set PGPASSWORD in the environment, never on the command line',
    'pg_dump: error: connection to server at "db" (10.0.0.5), port 5432 failed',
    'https://example.com/path/to/page?x=1',
    'scholaria_backup_20261126_020000',
    'Basic authentication failed; Bearer tokens are not supported',
  ])('leaves ordinary text alone: %s', (text) => {
    expect(createRedactor(['unrelated-secret'])(text)).toBe(text);
  });

  it('keeps JSON valid when redacting JSON text', () => {
    const redact = createRedactor(['top-secret']);
    const json = JSON.stringify({
      url: 'redis://:pw12@h:1',
      mail: 'a@b.com',
      env: 'PGPASSWORD=x"y',
      nested: { token: 'top-secret', note: 'token=abc\\"def' },
    });
    const parsed = JSON.parse(redact(json)) as Record<string, unknown>;
    expect(parsed.url).toBe('redis://:***@h:1');
    expect(parsed.mail).toBe('a@b.com');
    expect(JSON.stringify(parsed)).not.toMatch(/pw12|top-secret|abc/);
  });

  it('is idempotent', () => {
    const redact = createRedactor(['s3cret-value']);
    const once = redact('postgres://u:s3cret-value@h/db PGPASSWORD=s3cret-value');
    expect(redact(once)).toBe(once);
  });
});

describe('redactDeep', () => {
  it('redacts strings in nested objects and arrays without touching the input', () => {
    const input = { a: 'postgres://u:pw99@h/db', list: ['PGPASSWORD=x1', 3, null], n: { deep: { v: 'ok' } }, when: new Date(0) };
    const out = redactDeep(input, createRedactor([]));
    expect(out).toEqual({ a: 'postgres://u:***@h/db', list: ['PGPASSWORD=***', 3, null], n: { deep: { v: 'ok' } }, when: new Date(0) });
    expect(input.a).toBe('postgres://u:pw99@h/db');
    expect(out.when).toBe(input.when);
  });

  it('copies errors with redacted message, stack and fields, keeping their type', () => {
    const cause = new Error('inner redis://:pw77@h:6379');
    const error = new BackupError('CONNECTION_FAILED', 'cannot reach postgres://u:pw88@db/x', {
      hint: 'check PGPASSWORD=pw88',
      cause,
      retryable: true,
    });
    const out = redactDeep({ error }, createRedactor([])).error;
    expect(out).not.toBe(error);
    expect(out).toBeInstanceOf(BackupError);
    expect(BackupError.isInstance(out)).toBe(true);
    expect(out.message).toBe('cannot reach postgres://u:***@db/x');
    expect(out.hint).toBe('check PGPASSWORD=***');
    expect(out.code).toBe('CONNECTION_FAILED');
    expect(out.retryable).toBe(true);
    expect(String(out.stack)).not.toContain('pw88');
    expect((out.cause as Error).message).toBe('inner redis://:***@h:6379');
    expect(error.message).toContain('pw88');
  });

  it('survives cycles', () => {
    const a: Record<string, unknown> = { s: 'token=abcdef' };
    a.self = a;
    const out = redactDeep(a, createRedactor([])) as Record<string, unknown>;
    expect(out.s).toBe('token=***');
    expect(out.self).toBe(out);
  });
});

describe('redactUrl', () => {
  it('masks credentials, query values and token-like path segments', () => {
    expect(redactUrl('https://user:pw@example.com/hooks/abcdef0123456789abcdef?token=zz&x=1')).toBe(
      'https://user:***@example.com/hooks/***?token=***&x=***',
    );
    expect(redactUrl('https://hooks.slack.com/services/T0001/B0002/XXXXYYYYZZZZ')).toBe('https://hooks.slack.com/services/T0001/B0002/***');
    expect(redactUrl('https://ops.example.com/hooks/backup')).toBe('https://ops.example.com/hooks/backup');
    expect(redactUrl('not a url with password=abc')).toBe('not a url with password=***');
  });

  it('is what redactSecrets misses for unknown hosts', () => {
    const url = 'https://ops.example.com/in/9f8e7d6c5b4a39281706';
    expect(redactSecrets(url)).toBe(url);
    expect(redactUrl(url)).toBe('https://ops.example.com/in/***');
  });
});
