import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { BackupError } from '../src/errors/backup-error.js';
import { formatSha256Sums, parseSha256Sums } from '../src/sha256sums/sha256sums.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'scholaria-sha256sums-'));
  dirs.push(d);
  return d;
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function catchError(fn: () => unknown): BackupError {
  try {
    fn();
  } catch (error) {
    if (BackupError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected a BackupError, nothing was thrown');
}

/** Writes files under a new temp dir and returns their entries (unsorted, as given). */
function writeSet(files: Record<string, Buffer>): { dir: string; entries: { path: string; sha256: string }[] } {
  const dir = tempDir();
  const entries = Object.entries(files).map(([path, data]) => {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), data);
    return { path, sha256: sha256(data) };
  });
  return { dir, entries };
}

function sha256sum(args: string[], cwd: string) {
  // Fixed locale so that messages and the C collation are predictable.
  return spawnSync('sha256sum', args, { cwd, encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });
}

const FILES: Record<string, Buffer> = {
  'redis/dump.rdb': randomBytes(4096),
  'postgres/scholaria.dump.gz': randomBytes(100_000),
  'qdrant/chunks collection.snapshot': randomBytes(777),
  'qdrant/한글.snapshot': Buffer.from('unicode name'),
  'qdrant/Z-upper.snapshot': Buffer.alloc(0),
  'manifest-like.json': Buffer.from('{}\n'),
  'odd/new\nline.bin': Buffer.from('a newline in the name'),
};

describe('formatSha256Sums with the real GNU sha256sum', () => {
  it('writes a file that `sha256sum -c SHA256SUMS` accepts', () => {
    const { dir, entries } = writeSet(FILES);
    const text = formatSha256Sums(entries);
    writeFileSync(join(dir, 'SHA256SUMS'), text);
    const result = sha256sum(['-c', '--strict', 'SHA256SUMS'], dir);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout.trim().split('\n')).toHaveLength(Object.keys(FILES).length);
    expect(result.stdout).toContain('postgres/scholaria.dump.gz: OK');
  });

  it('and `sha256sum -c` fails when a byte of a file is changed', () => {
    const { dir, entries } = writeSet(FILES);
    writeFileSync(join(dir, 'SHA256SUMS'), formatSha256Sums(entries));
    const damaged = Buffer.from(FILES['redis/dump.rdb']!);
    damaged[100] = damaged[100]! ^ 0xff;
    writeFileSync(join(dir, 'redis/dump.rdb'), damaged);
    const result = sha256sum(['-c', 'SHA256SUMS'], dir);
    expect(result.status).toBe(1);
    expect(result.stdout).toContain('redis/dump.rdb: FAILED');
  });

  it('is byte for byte what sha256sum prints for the same files in C order', () => {
    const { dir, entries } = writeSet(FILES);
    const sorted = Object.keys(FILES).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const result = sha256sum(['--', ...sorted], dir);
    expect(result.status).toBe(0);
    expect(formatSha256Sums(entries)).toBe(result.stdout);
  });

  it('formats two spaces, lowercase hex, sorted paths and LF endings', () => {
    const upper = 'A'.repeat(64);
    const text = formatSha256Sums([
      { path: 'b/x', sha256: upper },
      { path: 'a/y', sha256: 'f'.repeat(64) },
    ]);
    expect(text).toBe(`${'f'.repeat(64)}  a/y\n${'a'.repeat(64)}  b/x\n`);
    expect(formatSha256Sums([])).toBe('');
  });

  it('refuses bad hashes, unsafe and duplicate paths', () => {
    const ok = 'a'.repeat(64);
    expect(catchError(() => formatSha256Sums([{ path: 'x', sha256: 'abc' }])).message).toMatch(/64 hexadecimal digits/);
    expect(catchError(() => formatSha256Sums([{ path: '../x', sha256: ok }])).message).toMatch(/contains "\.\."/);
    expect(catchError(() => formatSha256Sums([{ path: '/etc/passwd', sha256: ok }])).message).toMatch(/absolute/);
    expect(catchError(() => formatSha256Sums([{ path: 'a\0b', sha256: ok }])).message).toMatch(/NUL/);
    const dup = catchError(() =>
      formatSha256Sums([
        { path: 'x', sha256: ok },
        { path: 'x', sha256: ok },
      ]),
    );
    expect(dup.code).toBe('MANIFEST_INVALID');
    expect(dup.message).toMatch(/duplicate path "x"/);
  });
});

describe('parseSha256Sums', () => {
  it('parses the real tool output in text, binary and tagged form', () => {
    const { dir, entries } = writeSet(FILES);
    const paths = Object.keys(FILES);
    const expected = [...entries].sort((a, b) => a.path.localeCompare(b.path));
    const byPath = (list: { path: string }[]) => [...list].sort((a, b) => a.path.localeCompare(b.path));
    for (const flags of [[], ['-b'], ['--tag']]) {
      const result = sha256sum([...flags, '--', ...paths], dir);
      expect(result.status).toBe(0);
      if (flags[0] === '-b') expect(result.stdout).toContain(' *redis/dump.rdb');
      expect(byPath(parseSha256Sums(result.stdout))).toEqual(expected);
    }
  });

  it('round-trips formatSha256Sums for any safe paths', () => {
    const segment = fc.string({ minLength: 1, maxLength: 8 }).filter((s) => !/[/\\\0]/.test(s) && s !== '.' && s !== '..' && !/^[A-Za-z]:/.test(s));
    const entry = fc.record({
      path: fc.array(segment, { minLength: 1, maxLength: 3 }).map((segs) => segs.join('/')),
      sha256: fc.stringMatching(/^[0-9a-f]{64}$/),
    });
    fc.assert(
      fc.property(fc.uniqueArray(entry, { selector: (e) => e.path, maxLength: 20 }), (entries) => {
        const text = formatSha256Sums(entries);
        const parsed = parseSha256Sums(text);
        expect(parsed).toHaveLength(entries.length);
        expect(new Map(parsed.map((e) => [e.path, e.sha256]))).toEqual(new Map(entries.map((e) => [e.path, e.sha256])));
        expect(text.endsWith('\n') || entries.length === 0).toBe(true);
      }),
    );
  });

  it('accepts a missing final newline and CRLF', () => {
    const h = 'b'.repeat(64);
    expect(parseSha256Sums(`${h}  a\r\n${h} *b`)).toEqual([
      { path: 'a', sha256: h },
      { path: 'b', sha256: h },
    ]);
  });

  it('names the line of every kind of problem', () => {
    const h = 'c'.repeat(64);
    const cases: [string, RegExp][] = [
      [`${h}  ok\nnot a checksum line\n`, /^sums: line 2: checksum must be 64 hexadecimal digits/],
      [`${h}  ok\n${h.slice(1)}  short\n`, /^sums: line 2: checksum must be 64 hexadecimal digits/],
      [`${h.slice(1)}g  bad-hex\n`, /^sums: line 1: checksum must be 64 hexadecimal digits/],
      [`${h}\n`, /^sums: line 1: no path after the checksum/],
      [`${h} x\n`, /^sums: line 1: expected two spaces/],
      [`${h}  ok\n\n${h}  ok2\n`, /^sums: line 2: empty line/],
      [`${h}  ok\n${h}  ../etc/passwd\n`, /^sums: line 2: .*contains "\.\."/],
      [`${h}  /etc/passwd\n`, /^sums: line 1: .*absolute/],
      [`${h}  a\0b\n`, /^sums: line 1: .*NUL/],
      [`${h}  a//b\n`, /^sums: line 1: .*empty or "\." segment/],
      [`${h}  \n`, /^sums: line 1: the path is empty/],
      [`${h}  x\n${h}  y\n${h} *x\n`, /^sums: line 3: duplicate path "x" \(first on line 1\)/],
      [`\\${h}  bad\\qescape\n`, /^sums: line 1: invalid escape/],
      [`SHA256 (x) = abc\n`, /^sums: line 1: checksum must be 64/],
    ];
    for (const [text, pattern] of cases) {
      const error = catchError(() => parseSha256Sums(text, 'sums'));
      expect(error.code).toBe('MANIFEST_INVALID');
      expect(error.message).toMatch(pattern);
      expect(error.hint).toBeTruthy();
    }
  });
});
