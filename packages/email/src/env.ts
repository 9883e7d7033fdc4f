import { hostname } from 'node:os';
import { z } from 'zod';
import { commaList, defineAdapter, envBoolean, envIssue, envPort, envUrl } from '@scholaria/backup-core';

export interface SmtpEnvConfig {
  /** SMTP_URL as given (may hold credentials), when it was used. */
  url?: string;
  host: string;
  port: number;
  secure: boolean;
  user?: string;
  password?: string;
}

export interface EmailEnvConfig {
  to: string[];
  from: string;
  smtp?: SmtpEnvConfig;
}

/** The sender when `BACKUP_NOTIFY_FROM` is not set. */
export const defaultEmailFrom = (): string => `backup@${hostname()}`;

const emailSchema = z.email({ pattern: z.regexes.html5Email });

const emailList = z.string().transform((s, ctx) => {
  const list = commaList(s);
  const bad = list.filter((a) => !emailSchema.safeParse(a).success);
  if (bad.length > 0) return envIssue(ctx, `not an email address: ${bad.map((b) => JSON.stringify(b)).join(', ')}`);
  if (list.length === 0) return envIssue(ctx, 'expected a comma list of email addresses');
  return list;
});

const fromAddress = z.string().transform((s, ctx) => {
  const m = /^(.*)<([^<>]+)>$/.exec(s);
  const addr = m ? m[2]!.trim() : s;
  if (!emailSchema.safeParse(addr).success) return envIssue(ctx, 'expected an email address, or "Name <address>"');
  return s;
});

const hostValue = z.string().transform((s, ctx) => {
  if (s.includes('://')) return envIssue(ctx, 'expected a host name, not a URL (use SMTP_URL for URLs)');
  if (!z.regexes.hostname.test(s) && !z.regexes.ipv4.test(s) && !/^\[?[0-9a-fA-F:]+\]?$/.test(s)) {
    return envIssue(ctx, 'expected a host name like smtp.example.com');
  }
  return s;
});

const CONFLICTS_WITH_URL = ['SMTP_HOST', 'SMTP_PORT', 'SMTP_SECURE'] as const;
const NEED_HOST = ['SMTP_PORT', 'SMTP_USER', 'SMTP_PASSWORD', 'SMTP_SECURE'] as const;

/**
 * The email notifier's `.env` descriptor: `BACKUP_NOTIFY_EMAIL` addresses through `SMTP_URL`, or
 * `SMTP_HOST` and its companions. Created only with both addresses and a server.
 */
export const emailNotifierEnv = defineAdapter({
  kind: 'notifier',
  name: 'email',
  title: 'Email notifications (`@scholaria/backup-email`)',
  label: 'BACKUP_NOTIFY_EMAIL/SMTP_*',
  enabledBy: 'BACKUP_NOTIFY_EMAIL',
  prefix: 'SMTP_',
  env: {
    BACKUP_NOTIFY_EMAIL: { schema: emailList, doc: 'comma list of addresses to email (needs `SMTP_URL` or `SMTP_HOST`)' },
    BACKUP_NOTIFY_FROM: { schema: fromAddress, default: '`backup@<hostname>`', doc: 'sender, `addr` or `Name <addr>`' },
    SMTP_URL: {
      schema: envUrl(['smtp:', 'smtps:'], 'smtps://user:password@smtp.example.com:465'),
      url: true,
      doc: '`smtp://user:pass@host:587` (STARTTLS when offered) or `smtps://user:pass@host:465`; or the five below',
    },
    SMTP_HOST: { schema: hostValue, doc: 'SMTP server host name' },
    SMTP_PORT: { schema: envPort, default: '`465` if secure, else `587`', doc: '1-65535' },
    SMTP_USER: { schema: z.string(), doc: 'SMTP login' },
    SMTP_PASSWORD: { schema: z.string(), secret: true, untrimmed: true, doc: '*secret*; needs `SMTP_USER`' },
    SMTP_SECURE: { schema: envBoolean, default: '`true` if port 465', doc: 'implicit TLS (`true`/`false`/`1`/`0`)' },
  },
  configure({ values, isSet, problem, warn }): EmailEnvConfig | undefined {
    let smtp: SmtpEnvConfig | undefined;
    if (isSet('SMTP_URL')) {
      for (const v of CONFLICTS_WITH_URL) {
        if (isSet(v)) problem(v, 'conflicts with SMTP_URL; put the host, port and scheme in SMTP_URL or unset SMTP_URL');
      }
      if (values.SMTP_URL) {
        const u = new URL(values.SMTP_URL);
        const secure = u.protocol === 'smtps:';
        const urlUser = u.username ? decodeURIComponent(u.username) : undefined;
        const urlPassword = u.password ? decodeURIComponent(u.password) : undefined;
        if ((urlUser || urlPassword) && (isSet('SMTP_USER') || isSet('SMTP_PASSWORD'))) {
          problem('SMTP_USER', 'credentials are given both in SMTP_URL and in SMTP_USER/SMTP_PASSWORD; keep one');
        }
        const user = urlUser ?? values.SMTP_USER;
        const password = urlPassword ?? values.SMTP_PASSWORD;
        smtp = {
          url: values.SMTP_URL,
          host: u.hostname,
          port: u.port ? Number(u.port) : secure ? 465 : 587,
          secure,
          ...(user !== undefined ? { user } : {}),
          ...(password !== undefined ? { password } : {}),
        };
        if (!u.hostname) problem('SMTP_URL', 'has no host name');
      }
    } else if (isSet('SMTP_HOST')) {
      if (values.SMTP_HOST) {
        const port = values.SMTP_PORT ?? (values.SMTP_SECURE ? 465 : 587);
        smtp = {
          host: values.SMTP_HOST,
          port,
          secure: values.SMTP_SECURE ?? port === 465,
          ...(values.SMTP_USER !== undefined ? { user: values.SMTP_USER } : {}),
          ...(values.SMTP_PASSWORD !== undefined ? { password: values.SMTP_PASSWORD } : {}),
        };
      }
      if (isSet('SMTP_PASSWORD') && !isSet('SMTP_USER')) problem('SMTP_PASSWORD', 'is set but SMTP_USER is not');
    } else {
      for (const v of NEED_HOST) {
        if (isSet(v)) problem(v, 'is set but SMTP_HOST is not; set SMTP_HOST (or SMTP_URL)');
      }
    }
    if (isSet('BACKUP_NOTIFY_EMAIL') && !isSet('SMTP_URL') && !isSet('SMTP_HOST')) {
      warn('BACKUP_NOTIFY_EMAIL is set but neither SMTP_URL nor SMTP_HOST: email notifications cannot be sent.');
    }
    return { to: values.BACKUP_NOTIFY_EMAIL ?? [], from: values.BACKUP_NOTIFY_FROM ?? defaultEmailFrom(), ...(smtp ? { smtp } : {}) };
  },
  active: (config) => config.to.length > 0 && config.smtp !== undefined,
  secrets: (config) => (config.smtp?.url ? [config.smtp.url] : []),
  async create(config, { engine }) {
    const { createEmailNotifier } = await import('./email-notifier.js');
    const smtp = config.smtp!;
    return createEmailNotifier({
      ...(smtp.url
        ? { url: smtp.url }
        : {
            host: smtp.host,
            port: smtp.port,
            secure: smtp.secure,
            ...(smtp.user ? { auth: { user: smtp.user, pass: smtp.password ?? '' } } : {}),
          }),
      from: config.from,
      to: config.to,
      on: engine.notifyOn,
    });
  },
});
