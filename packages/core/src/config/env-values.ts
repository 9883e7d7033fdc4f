import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../errors/backup-error.js';

/**
 * Schema building blocks for environment variables (see `EnvVariable`). Each takes the trimmed
 * string and yields the parsed value or a message saying what is expected; adapters compose their
 * own from these.
 */

/** Adds a custom issue with `message` and returns zod's NEVER (for `transform`). */
export function envIssue(ctx: z.RefinementCtx, message: string): never {
  ctx.addIssue({ code: 'custom', message });
  return z.NEVER;
}

/** A whole number from `min` to `max`; `expected` completes "expected ...". */
export const envInteger = (min: number, max: number, expected: string) =>
  z.string().transform((s, ctx) => {
    if (!/^\d+$/.test(s)) return envIssue(ctx, `expected ${expected}`);
    const n = Number(s);
    if (n < min || n > max) return envIssue(ctx, `expected ${expected}`);
    return n;
  });

export const envPort = envInteger(1, 65_535, 'a port number from 1 to 65535');

/** `true`/`false`/`1`/`0`, case-insensitive. */
export const envBoolean = z.string().transform((s, ctx) => {
  const v = s.toLowerCase();
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  return envIssue(ctx, 'expected true or false');
});

/** A path without NUL bytes, as given. */
export const envPath = z.string().transform((s, ctx) => (s.includes('\0') ? envIssue(ctx, 'expected a path without NUL bytes') : s));

/** A folder, made absolute against the working directory. */
export const envDirectory = envPath.transform((s) => (isAbsolute(s) ? s : resolve(s)));

/** The distinct non-empty items of a comma list. */
export const commaList = (s: string): string[] => [...new Set(s.split(',').map((x) => x.trim()).filter((x) => x !== ''))];

/** A comma list of `allowed` words (case-insensitive); `aliases` expand (`all` → every word). */
export const envEnumList = <T extends string>(allowed: readonly T[], aliases: Record<string, readonly T[]> = {}) =>
  z.string().transform((s, ctx) => {
    const out: T[] = [];
    for (const item of commaList(s)) {
      const v = item.toLowerCase();
      if (aliases[v]) out.push(...aliases[v]!);
      else if ((allowed as readonly string[]).includes(v)) out.push(v as T);
      else return envIssue(ctx, `unknown value "${item}"; expected a comma list of ${allowed.join(', ')}`);
    }
    if (out.length === 0) return envIssue(ctx, `expected a comma list of ${allowed.join(', ')}`);
    return [...new Set(out)];
  });

/** One of `allowed` (case-insensitive). */
export const envEnum = <T extends string>(allowed: readonly T[]) =>
  z.string().transform((s, ctx) => {
    const v = s.toLowerCase() as T;
    return allowed.includes(v) ? v : envIssue(ctx, `expected one of ${allowed.join(', ')}`);
  });

/** A URL with one of `protocols` (`['http:', 'https:']`); `example` is shown when it is not. */
export const envUrl = (protocols: string[], example: string) =>
  z.string().transform((s, ctx) => {
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      return envIssue(ctx, `expected a URL like ${example}`);
    }
    if (!protocols.includes(u.protocol)) {
      return envIssue(ctx, `expected a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')} like ${example}, got ${u.protocol}//`);
    }
    return s;
  });

/** The URL with its password replaced by `***` (or the userinfo, when it does not parse). */
export function hideUrlPassword(raw: string): string {
  try {
    const u = new URL(raw);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return raw.replace(/\/\/[^/@]*@/, '//***@');
  }
}

/** The password of a URL, raw and percent-decoded; none when it has none or does not parse. */
export function urlPasswords(raw: string | undefined): string[] {
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

function byteSizeProblem(spec: string): number | string {
  const m = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(String(spec).trim());
  if (!m) return 'expected a size in bytes, optionally with a unit (e.g. 1GiB, 500MB)';
  const factor = BYTE_UNITS[m[2]!.toLowerCase()];
  if (factor === undefined) return `unknown unit "${m[2]}" (use B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)`;
  const bytes = Math.floor(Number(m[1]) * factor);
  if (!Number.isSafeInteger(bytes)) return 'the size is too large';
  return bytes;
}

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

/** A byte size as `parseByteSize` reads it. */
export const envByteSize = z.string().transform((s, ctx) => {
  const r = byteSizeProblem(s);
  return typeof r === 'string' ? envIssue(ctx, r) : r;
});
