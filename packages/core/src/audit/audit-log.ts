import { createHash } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { Readable } from 'node:stream';
import { BackupError } from '../errors/backup-error.js';
import type { Storage } from '../interfaces/storage.js';
import { assertTimeZone, isoWithOffset, zonedParts } from '../util/time-zone.js';

/**
 * Hash-chained audit log on a Storage: `.scholaria-backup/audit/<YYYY-MM>.jsonl`, one JSON
 * object per line. Each line carries `prevHash` (the previous line's `hash`, across month
 * files; the first line of the log links to 64 zeros) and `hash`, the sha256 of the line's
 * canonical JSON without `hash` (keys sorted, no whitespace). Editing, deleting, inserting or
 * reordering a line breaks the chain at that line. Removing lines from the very end cannot be
 * detected from the log alone.
 *
 * Storages have no append, so an append reads the month file, adds a line and puts the whole
 * file back. The engine holds its storage lock while appending; appends from one process are
 * serialised here.
 */

export const AUDIT_DIR = '.scholaria-backup/audit/';
export const AUDIT_GENESIS_HASH = '0'.repeat(64);
const AUDIT_FILE_RE = /^(\d{4}-\d{2})\.jsonl$/;

export interface AuditEntry {
  action: 'backup' | 'restore' | 'verify' | 'prune' | (string & {});
  setId?: string;
  components?: string[];
  result: 'ok' | 'partial' | 'failed' | (string & {});
  /** Already free of secrets; `redact` (if given) runs over it as well. */
  error?: string;
  details?: Record<string, unknown>;
}

export interface AuditRecord {
  /** ISO 8601 with the offset of the log's time zone. */
  time: string;
  /** `user@host`. */
  actor: string;
  action: string;
  setId: string | null;
  components: string[];
  result: string;
  error: string | null;
  details?: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

export interface AuditVerifyResult {
  ok: boolean;
  /** Lines read across all files. */
  lines: number;
  /** The first line where the chain breaks; `line` is 1-based within `file`. */
  firstBroken?: { file: string; line: number; reason: string };
}

export interface AuditLogOptions {
  clock?: () => Date;
  /** Default `${user}@${host}` from os.userInfo() and os.hostname(). */
  actor?: string;
  /** Zone of the timestamps and of the month files, default 'UTC'. */
  timeZone?: string;
  /** Applied to `error` before writing (e.g. the engine's secret redaction). */
  redact?: (text: string) => string;
}

export interface AuditLog {
  append(entry: AuditEntry): Promise<AuditRecord>;
  /** Every record, oldest first. Throws AUDIT_BROKEN naming file and line if a line is not JSON. */
  read(): Promise<AuditRecord[]>;
  verify(): Promise<AuditVerifyResult>;
}

/** JSON with object keys sorted at every level and no whitespace: the bytes that are hashed. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    const json = JSON.stringify(value);
    return json === undefined ? 'null' : json;
  }
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const entries = Object.keys(value)
    .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
  return `{${entries.join(',')}}`;
}

/** sha256 (hex) of the record's canonical JSON without its `hash` field. */
export function hashAuditRecord(record: Omit<AuditRecord, 'hash'> | Record<string, unknown>): string {
  const { hash: _ignored, ...rest } = record as Record<string, unknown>;
  return createHash('sha256').update(canonicalJson(rest)).digest('hex');
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * Verifies the hash chain of audit files given oldest first (`verify()` sorts the month files by
 * name). Pure: no I/O.
 */
export function verifyAuditLines(files: readonly { file: string; text: string }[]): AuditVerifyResult {
  let expectedPrev = AUDIT_GENESIS_HASH;
  let lines = 0;
  let firstBroken: AuditVerifyResult['firstBroken'];
  for (const { file, text } of files) {
    const fileLines = splitLines(text);
    fileLines.forEach((raw, i) => {
      lines++;
      if (firstBroken) return;
      const broken = (reason: string) => {
        firstBroken = { file, line: i + 1, reason };
      };
      if (raw.trim() === '') return broken('empty line');
      let record: Record<string, unknown>;
      try {
        record = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        return broken('not valid JSON');
      }
      if (typeof record !== 'object' || record === null || Array.isArray(record)) return broken('not a JSON object');
      if (typeof record.hash !== 'string' || !HEX64.test(record.hash)) return broken('missing or malformed "hash"');
      if (typeof record.prevHash !== 'string' || !HEX64.test(record.prevHash)) return broken('missing or malformed "prevHash"');
      if (hashAuditRecord(record) !== record.hash) {
        return broken('the line does not match its hash (it was edited)');
      }
      if (record.prevHash !== expectedPrev) {
        return broken(
          expectedPrev === AUDIT_GENESIS_HASH && lines === 1
            ? 'the first line of the log does not start the chain (earlier lines or files were removed)'
            : 'prevHash does not match the hash of the line before it (a line was deleted, inserted or reordered)',
        );
      }
      expectedPrev = record.hash;
    });
  }
  return firstBroken ? { ok: false, lines, firstBroken } : { ok: true, lines };
}

function splitLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

async function readText(storage: Storage, key: string): Promise<string> {
  const stream = await storage.get(key);
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

function defaultActor(): string {
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    // Containers often run as a uid without a passwd entry.
    user = process.env.USER ?? process.env.LOGNAME ?? String(process.getuid?.() ?? 'unknown');
  }
  return `${user}@${hostname()}`;
}

function checkEntry(entry: AuditEntry): void {
  const problems: string[] = [];
  if (typeof entry !== 'object' || entry === null) problems.push('entry must be an object');
  else {
    if (typeof entry.action !== 'string' || entry.action === '') problems.push('action must be a non-empty string');
    if (typeof entry.result !== 'string' || entry.result === '') problems.push('result must be a non-empty string');
    if (entry.setId !== undefined && typeof entry.setId !== 'string') problems.push('setId must be a string');
    if (entry.components !== undefined && !(Array.isArray(entry.components) && entry.components.every((c) => typeof c === 'string'))) {
      problems.push('components must be a list of strings');
    }
    if (entry.error !== undefined && typeof entry.error !== 'string') problems.push('error must be a string');
    if (entry.details !== undefined && (typeof entry.details !== 'object' || entry.details === null || Array.isArray(entry.details))) {
      problems.push('details must be an object');
    }
  }
  if (problems.length > 0) {
    throw new BackupError('USAGE', `Invalid audit entry: ${problems.join('; ')}`, {
      hint: "Pass { action: 'backup', result: 'ok', setId?, components?, error?, details? }.",
    });
  }
}

export function createAuditLog(storage: Storage, options: AuditLogOptions = {}): AuditLog {
  const clock = options.clock ?? (() => new Date());
  const timeZone = options.timeZone ?? 'UTC';
  assertTimeZone(timeZone);
  let actor = options.actor;
  let tail: Promise<unknown> = Promise.resolve();

  async function listFiles(): Promise<{ key: string; month: string }[]> {
    const entries = await storage.list(AUDIT_DIR);
    return entries
      .map((e) => ({ key: e.key, month: AUDIT_FILE_RE.exec(e.key.slice(AUDIT_DIR.length))?.[1] }))
      .filter((e): e is { key: string; month: string } => e.key.startsWith(AUDIT_DIR) && e.month !== undefined)
      .sort((a, b) => (a.month < b.month ? -1 : a.month > b.month ? 1 : 0));
  }

  async function doAppend(entry: AuditEntry): Promise<AuditRecord> {
    checkEntry(entry);
    const now = clock();
    const parts = zonedParts(now, timeZone);
    const files = await listFiles();
    const texts = new Map<string, string>();
    let prevHash = AUDIT_GENESIS_HASH;
    for (let i = files.length - 1; i >= 0; i--) {
      const text = await readText(storage, files[i]!.key);
      texts.set(files[i]!.key, text);
      const last = splitLines(text).filter((l) => l.trim() !== '').pop();
      if (last === undefined) continue;
      try {
        const parsed = JSON.parse(last) as { hash?: unknown };
        prevHash = typeof parsed.hash === 'string' && HEX64.test(parsed.hash) ? parsed.hash : sha256Hex(last);
      } catch {
        // A damaged last line stays damaged (verify names it); the chain continues from its bytes.
        prevHash = sha256Hex(last);
      }
      break;
    }
    // A clock that went back must not write into an older month than the newest file: the
    // files are read in name order, so the chain would run backwards.
    let month = `${parts.year}-${parts.month}`;
    const newest = files[files.length - 1];
    if (newest && newest.month > month) month = newest.month;
    const key = `${AUDIT_DIR}${month}.jsonl`;

    const redact = options.redact ?? ((s: string) => s);
    actor ??= defaultActor();
    const body: Omit<AuditRecord, 'hash'> = {
      time: isoWithOffset(now, timeZone),
      actor,
      action: entry.action,
      setId: entry.setId ?? null,
      components: [...(entry.components ?? [])],
      result: entry.result,
      error: entry.error === undefined ? null : redact(entry.error),
      // Round-tripped through JSON so that the hashed value is exactly what is read back.
      ...(entry.details !== undefined ? { details: JSON.parse(JSON.stringify(entry.details)) as Record<string, unknown> } : {}),
      prevHash,
    };
    const record: AuditRecord = { ...body, hash: hashAuditRecord(body) };

    let existing = texts.get(key);
    if (existing === undefined && files.some((f) => f.key === key)) existing = await readText(storage, key);
    existing ??= '';
    if (existing !== '' && !existing.endsWith('\n')) existing += '\n';
    const content = Buffer.from(`${existing}${JSON.stringify(record)}\n`, 'utf8');
    await storage.put(key, Readable.from([content]), { contentType: 'application/x-ndjson', size: content.length });
    return record;
  }

  async function readAll(): Promise<{ file: string; text: string }[]> {
    const files = await listFiles();
    const out: { file: string; text: string }[] = [];
    for (const f of files) out.push({ file: f.key, text: await readText(storage, f.key) });
    return out;
  }

  return {
    append(entry) {
      const result = tail.then(() => doAppend(entry));
      // One failed append must not block the ones queued behind it.
      tail = result.catch(() => undefined);
      return result;
    },
    async read() {
      const records: AuditRecord[] = [];
      for (const { file, text } of await readAll()) {
        splitLines(text).forEach((line, i) => {
          if (line.trim() === '') return;
          try {
            records.push(JSON.parse(line) as AuditRecord);
          } catch (error) {
            throw new BackupError('AUDIT_BROKEN', `Audit log ${file}: line ${i + 1} is not valid JSON`, {
              cause: error,
              hint: 'Run verify() to see where the chain breaks; restore the file from a copy if you have one.',
            });
          }
        });
      }
      return records;
    },
    async verify() {
      return verifyAuditLines(await readAll());
    },
  };
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
