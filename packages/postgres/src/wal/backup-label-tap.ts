import { Transform, type TransformCallback } from 'node:stream';
import tar from 'tar-stream';

export interface LabelFacts {
  /** backup_label: START WAL LOCATION and START TIMELINE. */
  startLsn?: string;
  timeline?: number;
  /** backup_manifest: WAL-Ranges' End-LSN (the stop point). */
  stopLsn?: string;
}

const SMALL = 64 * 1024 * 1024;

/**
 * Passes the tar stream of pg_basebackup through unchanged while reading two small members:
 * backup_label (start LSN, timeline) and backup_manifest (WAL range, with the end LSN), which
 * pg_basebackup puts into the tar when it writes to stdout. Every other member is skipped, so
 * memory stays constant whatever the size of the database.
 */
export function backupLabelTap(): { tap: Transform; facts: () => Promise<LabelFacts> } {
  const extract = tar.extract();
  const facts: LabelFacts = {};
  extract.on('entry', (header, stream, next) => {
    const name = header.name.replace(/^\.\//, '');
    if ((name === 'backup_label' || name === 'backup_manifest') && (header.size ?? 0) < SMALL) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (name === 'backup_label') {
          const start = /START WAL LOCATION:\s*([0-9A-F]+\/[0-9A-F]+)/i.exec(text);
          const tli = /START TIMELINE:\s*(\d+)/.exec(text);
          if (start) facts.startLsn = start[1]!.toUpperCase();
          if (tli) facts.timeline = Number(tli[1]);
        } else {
          try {
            const manifest = JSON.parse(text) as { 'WAL-Ranges'?: { Timeline: number; 'Start-LSN': string; 'End-LSN': string }[] };
            const last = manifest['WAL-Ranges']?.at(-1);
            if (last) facts.stopLsn = last['End-LSN'].toUpperCase();
          } catch {
            // an unreadable manifest leaves the stop point unknown; the source reports it
          }
        }
        next();
      });
    } else {
      stream.on('end', () => next());
      stream.resume();
    }
  });
  const done = new Promise<LabelFacts>((resolve) => {
    extract.on('finish', () => resolve(facts));
    extract.on('close', () => resolve(facts));
    extract.on('error', () => resolve(facts));
  });
  const tap = new Transform({
    transform(chunk: Buffer, _e, cb: TransformCallback) {
      if (extract.destroyed) return cb(null, chunk);
      // tar-stream is a streamx Writable: write() takes no callback, 'drain' says when to go on.
      if (extract.write(chunk)) cb(null, chunk);
      else extract.once('drain', () => cb(null, chunk));
    },
    flush(cb: TransformCallback) {
      extract.end(undefined);
      cb();
    },
  });
  return { tap, facts: () => done };
}
