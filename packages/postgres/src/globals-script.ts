import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';

/**
 * Reads the SQL that `pg_dumpall --globals-only` writes, one statement at a time. psql
 * meta-commands (`\restrict`, `\connect`) and comments are dropped: the statements are run
 * through `pg`, so restoring globals needs no psql.
 */
export async function* globalsStatements(input: Readable): AsyncGenerator<string> {
  const lines = createInterface({ input, crlfDelay: Infinity });
  let current = '';
  for await (const line of lines) {
    if (!current) {
      const trimmed = line.trim();
      if (trimmed === '' || trimmed.startsWith('--') || trimmed.startsWith('\\')) continue;
    }
    current = current ? `${current}\n${line}` : line;
    // A statement ends at a ';' that closes a line outside any string literal.
    if (current.trimEnd().endsWith(';') && quotesBalanced(current)) {
      yield current.trim();
      current = '';
    }
  }
  if (current.trim()) yield current.trim();
}

function quotesBalanced(sql: string): boolean {
  let inString = false;
  let inIdent = false;
  for (let i = 0; i < sql.length; i++) {
    const ch = sql[i];
    if (inString) {
      if (ch === "'") inString = false;
    } else if (inIdent) {
      if (ch === '"') inIdent = false;
    } else if (ch === "'") inString = true;
    else if (ch === '"') inIdent = true;
  }
  return !inString && !inIdent;
}

/** Reads an identifier (bare or double-quoted) at the start of `s`. */
function readIdent(s: string): { name: string; rest: string } | undefined {
  if (s.startsWith('"')) {
    let name = '';
    for (let i = 1; i < s.length; i++) {
      if (s[i] === '"') {
        if (s[i + 1] === '"') {
          name += '"';
          i++;
        } else return { name, rest: s.slice(i + 1) };
      } else name += s[i];
    }
    return undefined;
  }
  const m = /^([A-Za-z_][A-Za-z0-9_$]*)/.exec(s);
  return m ? { name: (m[1] as string).toLowerCase(), rest: s.slice((m[1] as string).length) } : undefined;
}

export type GlobalsStatement =
  | { kind: 'create-role'; role: string; sql: string }
  | { kind: 'role'; role: string; sql: string }
  | { kind: 'create-tablespace'; tablespace: string; sql: string }
  | { kind: 'tablespace'; tablespace: string; sql: string }
  | { kind: 'other'; sql: string };

/** Sorts a statement by what it touches, so statements about roles that already exist can be skipped. */
export function classifyGlobalsStatement(sql: string): GlobalsStatement {
  const roleStmt = /^(CREATE ROLE|ALTER ROLE|COMMENT ON ROLE|SECURITY LABEL FOR \S+ ON ROLE)\s+/i.exec(sql);
  if (roleStmt) {
    const id = readIdent(sql.slice(roleStmt[0].length));
    if (id) {
      const kind = /^CREATE ROLE$/i.test(roleStmt[1] as string) ? 'create-role' : 'role';
      return { kind, role: id.name, sql };
    }
  }
  const tsStmt = /^(CREATE TABLESPACE|ALTER TABLESPACE|COMMENT ON TABLESPACE|GRANT .* ON TABLESPACE)\s+/i.exec(sql);
  if (tsStmt) {
    const id = readIdent(sql.slice(tsStmt[0].length));
    if (id) {
      const kind = /^CREATE TABLESPACE$/i.test(tsStmt[1] as string) ? 'create-tablespace' : 'tablespace';
      return { kind, tablespace: id.name, sql };
    }
  }
  return { kind: 'other', sql };
}
