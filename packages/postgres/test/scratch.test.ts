import { test } from 'vitest';
import { execFileSync } from 'node:child_process';
import { startPostgres } from '@scholaria/backup-testkit';
test('explore', async () => {
  const s = await startPostgres();
  await s.createDatabase('x');
  await s.query('x', `create role alice login password 'secret'; create table t(a int); grant select on t to alice; insert into t values (1),(2); grant connect on database x to alice; alter database x set work_mem = '8MB'`);
  const env = { ...process.env, PGPASSWORD: s.password };
  const g = execFileSync(`${s.binDir}/pg_dumpall`, ['-g', '-h', '127.0.0.1', '-p', String(s.port), '-U', 'postgres'], { env }).toString();
  console.log(g);
  execFileSync('bash', ['-c', `${s.binDir}/pg_dump -Fc -Z0 -h 127.0.0.1 -p ${s.port} -U postgres x > /tmp/pgscratch/x.dump`], { env });
  console.log(execFileSync('bash', ['-c', `cat /tmp/pgscratch/x.dump | ${s.binDir}/pg_restore -l`]).toString());
  console.log(execFileSync('bash', ['-c', `head -c 20 /tmp/pgscratch/x.dump | xxd`]).toString());
  console.log(await s.query('postgres', `select datacl::text, datcollate, datctype, pg_encoding_to_char(encoding) enc, (select setconfig from pg_db_role_setting where setdatabase=d.oid and setrole=0) from pg_database d where datname='x'`));
  await s.stop();
});
