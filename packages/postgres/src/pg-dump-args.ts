/**
 * Argument lists for pg_dump, pg_restore and pg_dumpall, built apart from running them so the
 * exact command line is unit-tested. Never contains a password: that goes in PGPASSWORD.
 */

export interface ConnectionArgs {
  host?: string;
  port?: number;
  user?: string;
}

export interface PgDumpArgsOptions extends ConnectionArgs {
  database: string;
  /** custom: one stream on stdout; directory: a folder (`file`) written by `jobs` workers. */
  format?: 'custom' | 'directory';
  /** Output folder, required for the directory format. */
  file?: string;
  jobs?: number;
  /** pg_dump's own compression level; 0 leaves compression to a codec outside pg_dump; omitted = pg_dump's default. */
  compressionLevel?: number;
  /** Snapshot exported by the transaction that takes the row counts. */
  snapshot?: string;
  schemas?: string[];
  excludeSchemas?: string[];
  tables?: string[];
  excludeTables?: string[];
  excludeTableData?: string[];
  noOwner?: boolean;
  noAcl?: boolean;
}

export interface PgRestoreArgsOptions extends ConnectionArgs {
  /** Database to restore into (or to connect to with `create`). Omit with `list`. */
  database?: string;
  /** Archive file or directory; omitted = read a custom-format archive from stdin. */
  file?: string;
  format?: 'custom' | 'directory';
  jobs?: number;
  clean?: boolean;
  ifExists?: boolean;
  singleTransaction?: boolean;
  exitOnError?: boolean;
  noOwner?: boolean;
  noAcl?: boolean;
  create?: boolean;
  /** Print the archive's table of contents instead of restoring. */
  list?: boolean;
}

export interface PgDumpallArgsOptions extends ConnectionArgs {
  /** Database pg_dumpall connects to. */
  database?: string;
  noRolePasswords?: boolean;
}

/**
 * A libpq connection string holding only the database name. Passing the name this way (not
 * bare) keeps a name that contains '=' or starts with 'postgresql://' from being read as a
 * connection string by the tools.
 */
export function conninfoForDatabase(database: string): string {
  return `dbname=${conninfoValue(database)}`;
}

/** Quotes a value for a libpq key=value connection string. */
export function conninfoValue(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

function connectionArgs(o: ConnectionArgs): string[] {
  const args: string[] = [];
  if (o.host) args.push(`--host=${o.host}`);
  if (o.port !== undefined) args.push(`--port=${o.port}`);
  if (o.user) args.push(`--username=${o.user}`);
  // Never prompt: there is no terminal, and a prompt would hang the backup.
  args.push('--no-password');
  return args;
}

function assertNoNul(values: (string | undefined)[]): void {
  for (const v of values) {
    if (v !== undefined && v.includes('\0')) throw new TypeError('arguments must not contain NUL bytes');
  }
}

export function buildPgDumpArgs(o: PgDumpArgsOptions): string[] {
  const format = o.format ?? 'custom';
  if (format === 'directory' && !o.file) throw new TypeError('the directory format needs `file` (the output folder)');
  if (o.jobs !== undefined && o.jobs > 1 && format !== 'directory') {
    throw new TypeError('pg_dump --jobs needs the directory format');
  }
  assertNoNul([o.database, o.file, o.snapshot, o.host, o.user, ...(o.schemas ?? []), ...(o.tables ?? [])]);
  const args = [`--format=${format}`];
  if (o.compressionLevel !== undefined) args.push(`--compress=${o.compressionLevel}`);
  if (o.jobs !== undefined && o.jobs > 1) args.push(`--jobs=${o.jobs}`);
  if (o.file) args.push(`--file=${o.file}`);
  if (o.snapshot) args.push(`--snapshot=${o.snapshot}`);
  for (const s of o.schemas ?? []) args.push(`--schema=${s}`);
  for (const s of o.excludeSchemas ?? []) args.push(`--exclude-schema=${s}`);
  for (const t of o.tables ?? []) args.push(`--table=${t}`);
  for (const t of o.excludeTables ?? []) args.push(`--exclude-table=${t}`);
  for (const t of o.excludeTableData ?? []) args.push(`--exclude-table-data=${t}`);
  if (o.noOwner) args.push('--no-owner');
  if (o.noAcl) args.push('--no-acl');
  args.push(...connectionArgs(o));
  args.push(`--dbname=${conninfoForDatabase(o.database)}`);
  return args;
}

export function buildPgRestoreArgs(o: PgRestoreArgsOptions): string[] {
  if (o.singleTransaction && o.jobs !== undefined && o.jobs > 1) {
    throw new TypeError('pg_restore cannot combine --single-transaction with --jobs');
  }
  if (o.jobs !== undefined && o.jobs > 1 && !o.file) {
    throw new TypeError('pg_restore --jobs needs a file or directory, not stdin');
  }
  if (o.ifExists && !o.clean) throw new TypeError('pg_restore --if-exists needs --clean');
  if (!o.list && !o.database) throw new TypeError('pg_restore needs a database unless listing');
  assertNoNul([o.database, o.file, o.host, o.user]);
  const args: string[] = [];
  if (o.format) args.push(`--format=${o.format}`);
  if (o.list) {
    args.push('--list');
  } else {
    if (o.clean) args.push('--clean');
    if (o.ifExists) args.push('--if-exists');
    if (o.create) args.push('--create');
    if (o.singleTransaction) args.push('--single-transaction');
    else if (o.exitOnError) args.push('--exit-on-error');
    if (o.jobs !== undefined && o.jobs > 1) args.push(`--jobs=${o.jobs}`);
    if (o.noOwner) args.push('--no-owner');
    if (o.noAcl) args.push('--no-acl');
    args.push(...connectionArgs(o));
    args.push(`--dbname=${conninfoForDatabase(o.database as string)}`);
  }
  if (o.file) args.push(o.file);
  return args;
}

export function buildPgDumpallArgs(o: PgDumpallArgsOptions): string[] {
  assertNoNul([o.database, o.host, o.user]);
  const args = ['--globals-only'];
  if (o.noRolePasswords) args.push('--no-role-passwords');
  args.push(...connectionArgs(o));
  // -l/--database (not --dbname, whose database pg_dumpall ignores); libpq expands it as a connection string.
  if (o.database) args.push(`--database=${conninfoForDatabase(o.database)}`);
  return args;
}
