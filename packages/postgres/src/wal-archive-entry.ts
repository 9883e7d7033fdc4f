/**
 * `@scholaria/backup-postgres/wal-archive`: the WAL archive alone (push, fetch, list, remove),
 * without the pg client, pg_dump and pg_basebackup code of the main entry. `scholaria-backup
 * wal-push %p` runs once per WAL segment as archive_command, so it loads only this.
 */
export { WalArchive, WAL_PREFIX, walRecordSchema, type WalRecord, type WalArchiveOptions, type PushResult, type ArchivedWalFile } from './wal/wal-archive.js';
