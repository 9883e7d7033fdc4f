import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { wrapFailure } from './dump-failure.js';
import type { DumpJob, RunningDump } from './dump-plan.js';
import { packDumpDirectory } from './dump-tar.js';
import { buildPgDumpArgs } from './pg-dump-args.js';
import { runTool, spawnTool } from './pg-tools.js';

/**
 * Parallel dumps write a folder (pg_dump -Fd -j needs one); it is streamed as a tar once
 * complete, and the folder removed whatever happened.
 */
export async function startDirectoryDump(job: DumpJob): Promise<RunningDump> {
  const { rt, ctx, pre, env, db } = job;
  const work = await mkdtemp(join(rt.options.tempDir ?? tmpdir(), 'scholaria-pgdump-'));
  const dir = join(work, 'dump');
  const args = buildPgDumpArgs({ ...job.dumpArgs, format: 'directory', file: dir, jobs: rt.options.jobs });
  ctx.logger.info('pg_dump started', { database: db, args });
  const tool = spawnTool(pre.pgDump.path, args, { env, signal: ctx.signal, stdout: 'ignore' });
  const finished = (async () => {
    const r = await tool.exited;
    if (r.code !== 0) throw job.dumpError(r, tool.stderr.text(rt.secrets()));
  })();
  const listing = finished.then(
    async () => {
      if (!pre.pgRestore) return undefined;
      const r = await runTool(pre.pgRestore.path, ['--list', dir], { env });
      return r.code === 0 ? r.stdout : undefined;
    },
    () => undefined,
  );
  const dumped = (async () => {
    try {
      await finished;
      await ctx.writeArtifact(job.artifact, packDumpDirectory(dir), job.artifactOptions);
    } catch (error) {
      throw wrapFailure(rt, error, ctx.signal);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  })();
  return { dumped, listing };
}
