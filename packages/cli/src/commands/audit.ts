import { createAuditLog, type AuditRecord } from '@scholaria/backup-core';
import { EXIT } from '../exit-codes.js';
import { withRuntime, type CommandContext } from '../command-context.js';
import { formatTime, table } from '../format.js';

export async function auditCommand(ctx: CommandContext, action: string | undefined, options: { limit?: number }): Promise<number> {
  return await withRuntime(ctx, undefined, async ({ rt }) => {
    const storage = rt.storages[0]!;
    if (action === 'verify') {
      const result = await rt.engine.verifyAudit();
      if (ctx.json) {
        ctx.out.document(result);
      } else if (result.ok) {
        ctx.out.line(`audit log on ${storage.name} is intact: ${result.lines} line${result.lines === 1 ? '' : 's'}, hash chain unbroken`);
      } else {
        const b = result.firstBroken!;
        ctx.out.line(`audit log on ${storage.name} is BROKEN at ${b.file} line ${b.line}: ${b.reason}`);
        ctx.out.note('hint: the lines from there on cannot be trusted; compare with a copy of the audit log (another storage or an older backup of the folder).');
      }
      return result.ok ? EXIT.OK : EXIT.FAILURE;
    }
    const log = createAuditLog(storage, { timeZone: rt.timeZone });
    let records: AuditRecord[] = await log.read();
    if (options.limit !== undefined) records = records.slice(-options.limit);
    if (ctx.json) {
      ctx.out.document(records);
      return EXIT.OK;
    }
    if (records.length === 0) {
      ctx.out.line(`the audit log on ${storage.name} is empty`);
      return EXIT.OK;
    }
    ctx.out.line(
      table(
        ['TIME', 'ACTOR', 'ACTION', 'SET', 'RESULT', 'DETAIL'],
        records.map((r) => [
          formatTime(r.time, rt.timeZone),
          r.actor,
          r.action,
          r.setId ?? '-',
          r.result,
          r.error ?? (r.components.length ? r.components.join(', ') : ''),
        ]),
      ),
    );
    return EXIT.OK;
  });
}
