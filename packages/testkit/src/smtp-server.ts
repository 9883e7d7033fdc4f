import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { simpleParser, type ParsedMail } from 'mailparser';
import { getFreePort } from './free-port.js';

export type { ParsedMail, AddressObject } from 'mailparser';
import { registerCleanup } from './cleanup.js';

export interface StartSmtpOptions {
  /** Require AUTH (PLAIN/LOGIN) with exactly these credentials; without it any client may send. */
  auth?: { user: string; pass: string };
  /** Implicit TLS from the first byte (SMTPS, port-465 style) with smtp-server's self-signed localhost certificate. */
  secure?: boolean;
  /** Advertise STARTTLS on a plain connection (self-signed certificate). Off by default. */
  starttls?: boolean;
  /**
   * Decide the answer to the DATA of message `index` (0-based, counting every attempt): return
   * `{ code, message }` to reject it (4xx temporary, 5xx permanent), undefined to accept.
   */
  reject?: (index: number) => { code: number; message: string } | undefined;
  /** Accept connections but never send the greeting: a server that hangs. */
  hang?: boolean;
}

export interface SmtpEnvelope {
  from: string;
  to: string[];
}

export interface SmtpServerHandle {
  host: string;
  port: number;
  secure: boolean;
  /** `smtp://user:pass@127.0.0.1:port` (or `smtps://`), ready for a client. */
  url: string;
  auth?: { user: string; pass: string };
  /** Accepted messages, parsed, in arrival order. */
  messages: ParsedMail[];
  /** Envelope (MAIL FROM / RCPT TO) of each accepted message, same order as `messages`. */
  envelopes: SmtpEnvelope[];
  /** DATA commands seen, accepted or rejected. */
  attempts: number;
  /** Resolves once `n` messages were accepted; rejects after `timeoutMs` (default 10 s). */
  waitForMessages(n: number, timeoutMs?: number): Promise<ParsedMail[]>;
  stop(): Promise<void>;
}

/** Starts a real SMTP server on 127.0.0.1 at a random port that captures and parses every message. */
export async function startSmtp(options: StartSmtpOptions = {}): Promise<SmtpServerHandle> {
  const host = '127.0.0.1';
  const port = await getFreePort(host);
  const messages: ParsedMail[] = [];
  const envelopes: SmtpEnvelope[] = [];
  const waiters = new Set<() => void>();
  let attempts = 0;

  const notify = () => {
    for (const w of [...waiters]) w();
  };

  const serverOptions: SMTPServerOptions = {
    secure: options.secure ?? false,
    logger: false,
    disableReverseLookup: true,
    // Tests must not wait 30 s for a client that keeps its connection open.
    closeTimeout: 500,
    socketTimeout: 30_000,
    allowInsecureAuth: true,
    authOptional: !options.auth,
    authMethods: ['PLAIN', 'LOGIN'],
    disabledCommands: options.starttls ? [] : ['STARTTLS'],
    onConnect(_session, callback) {
      // Withholding the callback withholds the 220 greeting: the client waits until it gives up.
      if (!options.hang) callback();
    },
    onAuth(auth, _session, callback) {
      const expected = options.auth;
      if (!expected || (auth.username === expected.user && auth.password === expected.pass)) {
        callback(null, { user: auth.username ?? 'anonymous' });
        return;
      }
      const error = Object.assign(new Error('Invalid username or password'), { responseCode: 535 });
      callback(error);
    },
    onData(stream, session, callback) {
      const index = attempts;
      attempts += 1;
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', (error) => callback(error));
      stream.on('end', () => {
        const rejection = options.reject?.(index);
        if (rejection) {
          callback(Object.assign(new Error(rejection.message), { responseCode: rejection.code }));
          return;
        }
        // Parse before answering, so a client that got "250" can rely on the message being here.
        simpleParser(Buffer.concat(chunks))
          .then((parsed) => {
            messages.push(parsed);
            envelopes.push({
              from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
              to: session.envelope.rcptTo.map((r) => r.address),
            });
            callback(null, 'Message captured');
            notify();
          })
          .catch((error: Error) => callback(Object.assign(error, { responseCode: 554 })));
      });
    },
  };
  const server = new SMTPServer(serverOptions);
  server.on('error', () => {
    // connection-level errors (client resets) are expected in failure tests
  });
  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= new Promise<void>((resolve) => server.close(() => resolve())).finally(() => {
      unregister();
      for (const w of [...waiters]) w();
    });
    return stopped;
  };
  const unregister = registerCleanup(stop);

  const scheme = options.secure ? 'smtps' : 'smtp';
  const credentials = options.auth
    ? `${encodeURIComponent(options.auth.user)}:${encodeURIComponent(options.auth.pass)}@`
    : '';

  return {
    host,
    port,
    secure: options.secure ?? false,
    url: `${scheme}://${credentials}${host}:${port}`,
    ...(options.auth ? { auth: { ...options.auth } } : {}),
    messages,
    envelopes,
    get attempts() {
      return attempts;
    },
    waitForMessages(n: number, timeoutMs = 10_000) {
      return new Promise<ParsedMail[]>((resolve, reject) => {
        const check = () => {
          if (messages.length >= n) {
            cleanup();
            resolve(messages.slice());
          } else if (stopped) {
            cleanup();
            reject(new Error(`SMTP server stopped with ${messages.length} of ${n} messages`));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`waited ${timeoutMs} ms for ${n} messages, got ${messages.length}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    stop,
  };
}
