import { hostname } from 'node:os';
import { z } from 'zod';
import addressparser from 'nodemailer/lib/addressparser/index.js';
import type { Transporter } from 'nodemailer';
import { eventTemplatesSchema, notifyOnSchema, parseNotifierOptions } from '@scholaria/backup-core';

/** Parses one or more addresses (`a@x, "Ops, Night" <b@y>`) into plain addresses; undefined if one is invalid. */
function parseAddresses(value: string | string[]): string[] | undefined {
  const list = (Array.isArray(value) ? value : [value]).flatMap((v) => addressparser(v, { flatten: true }));
  const addresses = list.map((a) => a.address.trim()).filter(Boolean);
  if (addresses.length === 0 || addresses.some((a) => !/^[^\s@]+@[^\s@]+$/.test(a))) return undefined;
  return [...new Set(addresses)];
}

const recipients = z
  .union([z.string(), z.array(z.string()).min(1)])
  .transform((value, ctx) => {
    const addresses = parseAddresses(value);
    if (!addresses) {
      ctx.addIssue({ code: 'custom', message: 'must be one or more email addresses, e.g. "ops@example.com, admin@example.com"' });
      return z.NEVER;
    }
    return addresses;
  });

const smtpUrl = z.string().refine(
  (value) => {
    try {
      const url = new URL(value);
      return (url.protocol === 'smtp:' || url.protocol === 'smtps:') && url.hostname !== '';
    } catch {
      return false;
    }
  },
  { message: 'must be an SMTP URL such as smtp://user:pass@mail.example.com:587 or smtps://...:465' },
);

export const emailNotifierOptionsSchema = z
  .strictObject({
    /** Name in logs and dispatch results. */
    name: z.string().min(1).default('email'),
    /** `smtp://user:pass@host:port` (STARTTLS when offered) or `smtps://...` (TLS from the start). */
    url: smtpUrl.optional(),
    host: z.string().min(1).optional(),
    port: z.number().int().min(1).max(65_535).optional(),
    /** TLS from the first byte (port 465). Default: true for smtps:// and port 465, else false. */
    secure: z.boolean().optional(),
    /** Refuse to send unless the server upgrades with STARTTLS. */
    requireTLS: z.boolean().optional(),
    /** Alias of requireTLS. */
    starttls: z.boolean().optional(),
    /** Never upgrade with STARTTLS even if offered (trusted local relays only). */
    ignoreTLS: z.boolean().optional(),
    auth: z.strictObject({ user: z.string().min(1, 'must not be empty'), pass: z.string() }).optional(),
    tls: z
      .strictObject({
        /** Set false only for a relay with a self-signed certificate you trust. */
        rejectUnauthorized: z.boolean().optional(),
        servername: z.string().optional(),
      })
      .optional(),
    from: z
      .string()
      .optional()
      .refine((v) => v === undefined || parseAddresses(v)?.length === 1, { message: 'must be one email address' }),
    to: recipients,
    on: notifyOnSchema,
    templates: eventTemplatesSchema,
    /** Connection, greeting and socket inactivity timeout of the SMTP client. */
    timeoutMs: z.number().int().positive().default(30_000),
    /** A ready nodemailer transporter; host, url and auth are then ignored. */
    transport: z
      .custom<Transporter>((v) => typeof v === 'object' && v !== null && typeof (v as Transporter).sendMail === 'function', {
        message: 'must be a nodemailer Transporter (nodemailer.createTransport(...))',
      })
      .optional(),
  })
  // `when` runs these even if other fields failed, so one error lists every problem.
  .refine((o) => Boolean(o?.url || o?.host || o?.transport), {
    path: ['host'],
    message: 'give host (with port), url (smtp://...) or transport',
    when: () => true,
  })
  .refine((o) => !((o?.requireTLS || o?.starttls) && o?.ignoreTLS), {
    path: ['ignoreTLS'],
    message: 'cannot be combined with requireTLS/starttls',
    when: () => true,
  });

export type EmailNotifierOptions = z.input<typeof emailNotifierOptionsSchema>;
type ParsedOptions = z.output<typeof emailNotifierOptionsSchema>;

/** The options with the URL merged in; explicit fields win over the URL. */
export interface ResolvedEmailOptions extends Omit<ParsedOptions, 'url' | 'from' | 'starttls'> {
  from: string;
  /** Every secret in the options (SMTP password), for redaction of client errors. */
  secrets: string[];
}

export function parseEmailNotifierOptions(options: unknown): ResolvedEmailOptions {
  const o = parseNotifierOptions('createEmailNotifier', emailNotifierOptionsSchema, options, 'Give { host, port, auth: { user, pass }, from, to } or { url: "smtp://user:pass@host:587", to }; see the @scholaria/backup-email README.');
  let fromUrl: { host?: string; port?: number; secure?: boolean; auth?: { user: string; pass: string } } = {};
  if (o.url) {
    const url = new URL(o.url);
    const secure = url.protocol === 'smtps:';
    fromUrl = {
      host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      secure,
      ...(url.port ? { port: Number(url.port) } : {}),
      ...(url.username ? { auth: { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) } } : {}),
    };
  }
  const host = o.host ?? fromUrl.host;
  const port = o.port ?? fromUrl.port;
  const secure = o.secure ?? fromUrl.secure ?? port === 465;
  const auth = o.auth ?? fromUrl.auth;
  const from =
    o.from ?? (auth?.user && auth.user.includes('@') ? auth.user : `scholaria-backup@${hostname() || 'localhost'}`);
  const { url: _url, starttls, from: _from, ...rest } = o;
  return {
    ...rest,
    ...(host ? { host } : {}),
    ...(port ? { port } : {}),
    secure,
    requireTLS: o.requireTLS ?? starttls,
    ...(auth ? { auth } : {}),
    from,
    secrets: auth?.pass ? [auth.pass] : [],
  };
}
