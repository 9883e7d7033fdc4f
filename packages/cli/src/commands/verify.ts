import { BackupError, type VerifyResult } from '@scholaria/backup-core';
import { EXIT } from '../exit-codes.js';
import { progressMode, withRuntime, type CommandContext } from '../command-context.js';
import { createProgress } from '../progress.js';
import { pitrConfigured, verifyWal } from '../wal/wal-runtime.js';

export function verifyJson(result: VerifyResult) {
  return { ok: result.ok, sets: result.sets };
}

export async function verifyCommand(ctx: CommandContext, ref: string | undefined, options: { all: boolean }): Promise<number> {
  if (ref !== undefined && options.all) {
    throw new BackupError('USAGE', `give either a set (${ref}) or --all, not both`, { hint: 'scholaria-backup verify [latest|SET_ID] or scholaria-backup verify --all' });
  }
  return await withRuntime(ctx, 'verify', async ({ rt, fileLog }) => {
    const progress = createProgress(ctx.out, progressMode(ctx));
    let result: VerifyResult;
    try {
      result = await rt.engine.verify({
        ...(options.all ? { all: true } : { ref: ref ?? 'latest' }),
        signal: ctx.signal,
        onProgress: (e) => progress.onProgress(e),
      });
    } finally {
      progress.stop();
    }
    fileLog[result.ok ? 'info' : 'error'](`verify ${result.ok ? 'passed' : 'FAILED'}: ${result.sets.length} set(s)`, {
      sets: result.sets.map((s) => ({ id: s.id, storage: s.storage, ok: s.ok, problems: s.problems })),
    });
    const wal = pitrConfigured(rt) ? await verifyWal(rt) : undefined;
    if (wal && !wal.ok) fileLog.error('verify: WAL archive FAILED', wal.json);
    if (ctx.json) {
      ctx.out.document({ ...verifyJson(result), ...(wal ? { ok: result.ok && wal.ok, wal: wal.json } : {}) });
    } else {
      if (result.sets.length === 0) ctx.out.line('no backup sets to verify');
      for (const set of result.sets) {
        const okFiles = set.files.filter((f) => f.ok).length;
        ctx.out.line(`${set.ok ? 'OK    ' : 'FAILED'} ${set.id} on ${set.storage}: ${okFiles}/${set.files.length} artifacts match their SHA-256`);
        for (const problem of set.problems) ctx.out.line(`       - ${problem}`);
      }
      for (const line of wal?.lines ?? []) ctx.out.line(line);
      if (!result.ok) ctx.out.note('hint: restore from a set that verifies (`scholaria-backup list`), and run a new backup soon.');
      if (wal && !wal.ok) ctx.out.note('hint: a WAL gap makes every moment after it unreachable: push the missing files from pg_wal if the server still has them, and take a new base backup now.');
    }
    return result.ok && (wal?.ok ?? true) ? EXIT.OK : EXIT.FAILURE;
  });
}
