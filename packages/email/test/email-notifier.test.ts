import { afterEach, describe, expect, it } from 'vitest';
import { BackupError, createRedactor, dispatchNotification, renderSubject } from '@scholaria/backup-core';
import { createEmailNotifier } from '@scholaria/backup-email';
import {
  notifierConformance,
  sampleBackupEvent,
  startSmtp,
  type AddressObject,
  type ParsedMail,
  type SmtpServerHandle,
} from '@scholaria/backup-testkit';

const mailText = (m: unknown) => {
  const mail = m as ParsedMail;
  return [mail.subject ?? '', mail.text ?? '', typeof mail.html === 'string' ? mail.html : ''].join('\n');
};

notifierConformance({
  name: 'email',
  textOf: mailText,
  async create(overrides) {
    const smtp = await startSmtp();
    const notifier = createEmailNotifier({
      host: smtp.host,
      port: smtp.port,
      from: 'backup@scholaria.test',
      to: 'ops@scholaria.test',
      ...(overrides?.on ? { on: overrides.on } : {}),
    });
    return { notifier, received: async () => smtp.messages, cleanup: smtp.stop };
  },
  async createFlaky() {
    const smtp = await startSmtp({ reject: (i) => (i === 0 ? { code: 451, message: 'Try again later' } : undefined) });
    const notifier = createEmailNotifier({ host: smtp.host, port: smtp.port, from: 'backup@scholaria.test', to: 'ops@scholaria.test' });
    return { notifier, received: async () => smtp.messages, cleanup: smtp.stop };
  },
  async createHanging() {
    const smtp = await startSmtp({ hang: true });
    const notifier = createEmailNotifier({ host: smtp.host, port: smtp.port, from: 'backup@scholaria.test', to: 'ops@scholaria.test' });
    return { notifier, received: async () => smtp.messages, cleanup: smtp.stop };
  },
});

const addresses = (field: AddressObject | AddressObject[] | undefined) =>
  (Array.isArray(field) ? field : field ? [field] : []).flatMap((a) => a.value.map((v) => v.address));

describe('createEmailNotifier', () => {
  const servers: SmtpServerHandle[] = [];
  const smtp = async (...args: Parameters<typeof startSmtp>) => {
    const server = await startSmtp(...args);
    servers.push(server);
    return server;
  };
  afterEach(async () => {
    while (servers.length) await servers.pop()?.stop();
  });

  it('sends a success report to every recipient with subject, text and HTML parts', async () => {
    const server = await smtp({ auth: { user: 'mailer', pass: 'smtp-pass-123' } });
    const notifier = createEmailNotifier({
      url: server.url,
      from: 'Scholaria Backup <backup@scholaria.test>',
      to: 'ops@scholaria.test, "Night, Shift" <night@scholaria.test>',
    });
    const event = sampleBackupEvent('success');
    const results = await dispatchNotification([notifier], event, { retries: 0 });
    expect(results).toEqual([{ notifier: 'email', ok: true, attempts: 1 }]);

    const [mail] = server.messages;
    expect(mail?.subject).toBe(renderSubject(event));
    expect(mail?.subject).toBe(`[OK] Backup succeeded: ${event.setId} (daily) on scholaria-db-1`);
    expect(addresses(mail?.from)).toEqual(['backup@scholaria.test']);
    expect(addresses(mail?.to).sort()).toEqual(['night@scholaria.test', 'ops@scholaria.test']);
    expect(server.envelopes[0]?.to.sort()).toEqual(['night@scholaria.test', 'ops@scholaria.test']);
    expect(mail?.headers.get('x-scholaria-event')).toBe('backup.succeeded');
    expect(mail?.headers.get('x-scholaria-set-id')).toBe(event.setId);

    const text = mail?.text ?? '';
    expect(text).toContain('Backup succeeded');
    expect(text).toContain('3 of 3 components ok');
    expect(text).toMatch(/Tier:\s+daily/);
    expect(text).toMatch(/Host:\s+scholaria-db-1/);
    expect(text).toMatch(/Size:\s+864\.0 MiB/);
    expect(text).toMatch(/Duration:\s+41\.2 s/);
    expect(text).toMatch(/postgres\s+ok\s+812\.0 MiB\s+38\.1 s/);
    expect(text).toMatch(/redis\s+ok\s+2\.5 MiB\s+900 ms/);
    expect(typeof mail?.html).toBe('string');
    expect(mail?.html).toContain('<h2');
    expect(mail?.html).toContain('812.0 MiB');
  });

  it('sends a failure report with the error, the next step and high priority', async () => {
    const server = await smtp();
    const notifier = createEmailNotifier({ host: server.host, port: server.port, to: ['ops@scholaria.test'] });
    const event = sampleBackupEvent('failure');
    expect((await dispatchNotification([notifier], event, { retries: 0 }))[0]?.ok).toBe(true);
    const [mail] = server.messages;
    expect(mail?.subject).toBe(`[FAILED] Backup failed: ${event.setId} (daily) on scholaria-db-1`);
    expect(mail?.headers.get('priority')).toBe('high');
    expect(mail?.text).toMatch(/redis\s+FAILED/);
    expect(mail?.text).toContain('Error [CONNECTION_FAILED]: redis: connect ECONNREFUSED 10.0.0.7:6379');
    expect(mail?.text).toContain('Next step: Start Redis or fix BACKUP_REDIS_URL, then run the backup again.');
    expect(mail?.html).toContain('CONNECTION_FAILED');
  });

  it('escapes event text in the HTML part', async () => {
    const server = await smtp();
    const notifier = createEmailNotifier({ host: server.host, port: server.port, to: 'ops@scholaria.test' });
    const event = sampleBackupEvent('failure', {
      error: { code: 'SOURCE_FAILED', message: 'bad name <script>alert("x")</script> & more' },
    });
    await dispatchNotification([notifier], event, { retries: 0 });
    const html = String(server.messages[0]?.html);
    expect(html).not.toContain('<script>');
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more');
    expect(server.messages[0]?.text).toContain('<script>alert("x")</script> & more');
  });

  it('uses replaced templates and keeps the defaults for the others', async () => {
    const server = await smtp();
    const notifier = createEmailNotifier({
      host: server.host,
      port: server.port,
      to: 'ops@scholaria.test',
      templates: { subject: (e) => `Scholaria ${e.outcome} ${e.setId}\nInjected: header` },
    });
    const event = sampleBackupEvent('success');
    await dispatchNotification([notifier], event, { retries: 0 });
    expect(server.messages[0]?.subject).toBe(`Scholaria success ${event.setId} Injected: header`);
    expect(server.messages[0]?.headers.has('injected')).toBe(false);
    expect(server.messages[0]?.text).toContain('Backup succeeded');
  });

  it('delivers over implicit TLS (smtps) and over STARTTLS', async () => {
    const tlsServer = await smtp({ secure: true, auth: { user: 'mailer', pass: 'tls-pass-456' } });
    const smtps = createEmailNotifier({
      url: tlsServer.url,
      to: 'ops@scholaria.test',
      tls: { rejectUnauthorized: false },
    });
    const starttlsServer = await smtp({ starttls: true });
    const starttls = createEmailNotifier({
      host: starttlsServer.host,
      port: starttlsServer.port,
      requireTLS: true,
      to: 'ops@scholaria.test',
      tls: { rejectUnauthorized: false },
    });
    const event = sampleBackupEvent('success');
    const results = await dispatchNotification([smtps, starttls], event, { retries: 0 });
    expect(results.map((r) => r.ok)).toEqual([true, true]);
    expect(tlsServer.messages[0]?.subject).toContain(event.setId);
    expect(starttlsServer.messages[0]?.subject).toContain(event.setId);
    // The default sender comes from the login when it is an address, else from the host name.
    expect(addresses(tlsServer.messages[0]?.from)[0]).toMatch(/^scholaria-backup@/);
  });

  it('does not retry a rejected login and keeps the password out of the error', async () => {
    const server = await smtp({ auth: { user: 'mailer', pass: 'right-pass-789' } });
    const notifier = createEmailNotifier({
      host: server.host,
      port: server.port,
      auth: { user: 'mailer', pass: 'wrong-pass-000' },
      to: 'ops@scholaria.test',
    });
    const warnings: string[] = [];
    const logger = { debug() {}, info() {}, error() {}, warn: (m: string) => warnings.push(m) };
    const [result] = await dispatchNotification([notifier], sampleBackupEvent('failure'), {
      retries: 3,
      backoffMs: 10,
      logger,
      redact: createRedactor(['wrong-pass-000']),
    });
    expect(result).toMatchObject({ ok: false, attempts: 1, code: 'NOTIFY_FAILED' });
    expect(result?.error).toMatch(/535|Invalid/);
    expect(result?.error).not.toContain('wrong-pass-000');
    expect(warnings.join('\n')).not.toContain('wrong-pass-000');
    expect(server.messages).toHaveLength(0);
  });

  it('does not retry a permanent 5xx refusal', async () => {
    const server = await smtp({ reject: () => ({ code: 554, message: 'Transaction failed: policy' }) });
    const notifier = createEmailNotifier({ host: server.host, port: server.port, to: 'ops@scholaria.test' });
    const [result] = await dispatchNotification([notifier], sampleBackupEvent('failure'), { retries: 3, backoffMs: 10 });
    expect(result).toMatchObject({ ok: false, attempts: 1, code: 'NOTIFY_FAILED' });
    expect(result?.error).toContain('554');
    expect(server.attempts).toBe(1);
  });

  it('throws a retryable NOTIFY_FAILED BackupError when nothing listens', async () => {
    const server = await smtp();
    const port = server.port;
    await server.stop();
    const notifier = createEmailNotifier({ host: '127.0.0.1', port, to: 'ops@scholaria.test' });
    const error = await notifier
      .notify(sampleBackupEvent('failure'), { signal: AbortSignal.timeout(10_000) })
      .then(() => undefined, (e: unknown) => e);
    expect(BackupError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ code: 'NOTIFY_FAILED', retryable: true, component: 'email' });
    expect((error as BackupError).hint).toMatch(/reachable/);
  });

  describe('options', () => {
    const issues = (fn: () => unknown): string => {
      try {
        fn();
      } catch (error) {
        expect(BackupError.isInstance(error)).toBe(true);
        expect((error as BackupError).code).toBe('CONFIG_INVALID');
        return (error as Error).message;
      }
      throw new Error('expected a ConfigError');
    };

    it('names every wrong field', () => {
      const message = issues(() => createEmailNotifier({ to: 'not-an-address', port: 70_000 } as never));
      expect(message).toContain('to: must be one or more email addresses');
      expect(message).toContain('port:');
      expect(message).toContain('host: give host (with port), url (smtp://...) or transport');
    });

    it('rejects a non-SMTP URL without echoing its password', () => {
      const message = issues(() => createEmailNotifier({ url: 'https://user:Sup3rSecret@mail.example.com', to: 'a@b.co' }));
      expect(message).toContain('url: must be an SMTP URL');
      expect(message).not.toContain('Sup3rSecret');
    });

    it('rejects unknown options and empty `on`', () => {
      const message = issues(() => createEmailNotifier({ host: 'h', to: 'a@b.co', recipients: 'x', on: [] } as never));
      expect(message).toContain('recipients');
      expect(message).toContain('on: must list at least one');
    });

    it('takes host, port, TLS and credentials from the URL, explicit fields winning', () => {
      const notifier = createEmailNotifier({ url: 'smtps://me%40x.io:p%40ss@mail.example.com', port: 2465, to: 'a@b.co', on: ['failure'] });
      expect(notifier.on).toEqual(['failure']);
      expect(notifier.name).toBe('email');
      expect(notifier.specVersion).toBe('v1');
    });
  });
});
