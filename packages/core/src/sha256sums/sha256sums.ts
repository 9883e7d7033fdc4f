import { ManifestError } from '../errors/backup-error.js';

/**
 * `SHA256SUMS` in the exact text format of GNU `sha256sum`, so that
 * `cd <set> && sha256sum -c SHA256SUMS` verifies a set without this library.
 *
 * Each line is `<64 lowercase hex><space><space><relative path>\n`, sorted by path (byte order
 * of the UTF-8 path, like `LC_ALL=C sort`). A path containing a newline is written the way GNU
 * does: the line starts with a backslash and the newline is escaped as `\n` (and `\` as `\\`).
 */
export interface Sha256SumEntry {
  path: string;
  sha256: string;
}

const HEX64 = /^[0-9a-fA-F]{64}$/;

/** Why `path` is not acceptable as a relative path inside a set, or undefined. */
function pathProblem(path: string): string | undefined {
  if (path === '') return 'the path is empty';
  if (path.includes('\0')) return 'the path contains a NUL byte';
  if (path.startsWith('/') || /^[A-Za-z]:/.test(path)) return `the path "${path}" is absolute`;
  if (path.includes('\\')) return `the path "${path}" contains a backslash`;
  if (path.split('/').some((seg) => seg === '..')) return `the path "${path}" contains ".."`;
  if (path.split('/').some((seg) => seg === '' || seg === '.')) return `the path "${path}" has an empty or "." segment`;
  return undefined;
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Formats entries as a GNU `sha256sum` file. Throws ManifestError on a bad hash, unsafe or duplicate path. */
export function formatSha256Sums(entries: readonly Sha256SumEntry[]): string {
  const seen = new Set<string>();
  for (const [i, e] of entries.entries()) {
    if (typeof e?.sha256 !== 'string' || !HEX64.test(e.sha256)) {
      throw new ManifestError(`SHA256SUMS entry #${i} (${JSON.stringify(e?.path)}): checksum must be 64 hexadecimal digits`, {
        hint: 'Pass the hex digest of the stored bytes (sha256).',
      });
    }
    const problem = typeof e.path === 'string' ? pathProblem(e.path) : 'the path is not a string';
    if (problem) {
      throw new ManifestError(`SHA256SUMS entry #${i}: ${problem}`, {
        hint: 'Paths are relative to the set folder, "/"-separated, without "..", "." or empty segments.',
      });
    }
    if (seen.has(e.path)) {
      throw new ManifestError(`SHA256SUMS entry #${i}: duplicate path "${e.path}"`, { hint: 'Each file appears once.' });
    }
    seen.add(e.path);
  }
  return [...entries]
    .sort((a, b) => byteOrder(a.path, b.path))
    .map((e) => {
      const hex = e.sha256.toLowerCase();
      if (e.path.includes('\n') || e.path.includes('\r')) {
        return `\\${hex}  ${e.path.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\r/g, '\\r')}\n`;
      }
      return `${hex}  ${e.path}\n`;
    })
    .join('');
}

function unescapeGnu(s: string): string | undefined {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c !== '\\') {
      out += c;
      continue;
    }
    const next = s[++i];
    if (next === '\\') out += '\\';
    else if (next === 'n') out += '\n';
    else if (next === 'r') out += '\r';
    else return undefined;
  }
  return out;
}

/**
 * Parses a GNU `sha256sum` file: text (`<hex>  path`) and binary (`<hex> *path`) lines, GNU's
 * escaped lines (leading `\`) and the BSD tagged form `SHA256 (path) = <hex>` of `--tag`.
 * Returns entries in file order with lowercase hex. Throws a ManifestError naming `where` and
 * the line number on a malformed line, bad hex, unsafe path (`..`, absolute, NUL) or duplicate
 * path. A final newline is optional; CRLF line ends are accepted.
 */
export function parseSha256Sums(text: string, where = 'SHA256SUMS'): Sha256SumEntry[] {
  const fail = (lineNo: number, why: string): never => {
    throw new ManifestError(`${where}: line ${lineNo}: ${why}`, {
      hint: 'Each line must be "<64 hex digits>  <relative path>" as written by sha256sum; the set may be damaged.',
      details: { line: lineNo },
    });
  };
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const entries: Sha256SumEntry[] = [];
  const firstLine = new Map<string, number>();
  lines.forEach((raw, index) => {
    const lineNo = index + 1;
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') fail(lineNo, 'empty line');
    const escaped = line.startsWith('\\');
    const body = escaped ? line.slice(1) : line;
    let hex: string;
    let rawPath: string;
    const tagged = /^SHA256 \((.*)\) = (\S*)$/.exec(body);
    if (tagged) {
      rawPath = tagged[1]!;
      hex = tagged[2]!;
      if (!HEX64.test(hex)) fail(lineNo, `checksum must be 64 hexadecimal digits, got "${hex.slice(0, 80)}"`);
    } else {
      const space = body.indexOf(' ');
      const token = space === -1 ? body : body.slice(0, space);
      if (!HEX64.test(token)) fail(lineNo, `checksum must be 64 hexadecimal digits, got "${token.slice(0, 80)}"`);
      if (space === -1) fail(lineNo, 'no path after the checksum: expected "<64 hex digits>  <path>"');
      hex = token;
      const mode = body[space + 1];
      if (mode !== ' ' && mode !== '*') {
        fail(lineNo, 'expected two spaces (text mode) or " *" (binary mode) between the checksum and the path');
      }
      rawPath = body.slice(space + 2);
    }
    const unescaped = escaped ? unescapeGnu(rawPath) : rawPath;
    if (unescaped === undefined) fail(lineNo, 'invalid escape sequence in the path');
    const path = unescaped!;
    const problem = pathProblem(path);
    if (problem) fail(lineNo, problem);
    const first = firstLine.get(path);
    if (first !== undefined) fail(lineNo, `duplicate path "${path}" (first on line ${first})`);
    firstLine.set(path, lineNo);
    entries.push({ path, sha256: hex.toLowerCase() });
  });
  return entries;
}
