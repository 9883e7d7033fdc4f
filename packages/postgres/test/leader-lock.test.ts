import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PostgresServer } from '@scholaria/backup-testkit';
import { advisoryLockKey, createPostgresLeaderElector, LEADER_APPLICATION_NAME } from '@scholaria/backup-postgres';

// The session advisory lock against a real PostgreSQL from the testkit.

let pg: PostgresServer;
beforeAll(async () => {
  pg = await startPostgres();
  await pg.createDatabase('leader');
});
afterAll(async () => {
  await pg?.stop();
});

const who = (n: number) => ({ owner: `host-${n}:${n}:abcd`, host: `host-${n}`, pid: n });
const elector = (name = 'sched') => createPostgresLeaderElector({ connection: { url: pg.url('leader') }, name, ttlMs: 3000 });

describe('createPostgresLeaderElector', () => {
  it('derives a stable signed 64-bit key from the name', () => {
    expect(advisoryLockKey('sched')).toBe(advisoryLockKey('sched'));
    expect(advisoryLockKey('sched')).not.toBe(advisoryLockKey('other'));
    const k = advisoryLockKey('sched');
    expect(k >= -(2n ** 63n) && k < 2n ** 63n).toBe(true);
  });

  it('one holder; others see it in pg_locks; release frees it at once', async () => {
    const a = elector();
    const b = elector();
    const leaseA = await a.acquire(who(1));
    expect(leaseA).toBeDefined();
    expect(await b.acquire(who(2))).toBeUndefined();
    expect(await b.holder()).toMatchObject({ owner: 'host-1:1:abcd', host: 'host-1', pid: 1 });
    const locks = await pg.query('leader', "select count(*)::int as n from pg_locks where locktype = 'advisory' and granted");
    expect(locks).toEqual([{ n: 1 }]);
    expect(await leaseA!.renew()).toBe(true);
    // A different name is a different lock.
    const other = await elector('other').acquire(who(3));
    expect(other).toBeDefined();
    await other!.release();
    await leaseA!.release();
    expect(await b.holder()).toBeUndefined();
    const leaseB = await b.acquire(who(2));
    expect(leaseB?.holder.pid).toBe(2);
    await leaseB!.release();
  });

  it('the lease is lost the moment its session ends, and the lock is free for the next replica', async () => {
    const a = elector('lost');
    const leaseA = (await a.acquire(who(1)))!;
    const lost = new Promise<unknown>((resolve) => leaseA.lost!.addEventListener('abort', () => resolve(leaseA.lost!.reason), { once: true }));
    const ended = await pg.query('leader', 'select pg_terminate_backend(pid) as ok from pg_stat_activity where application_name = $1', [`${LEADER_APPLICATION_NAME}host-1:1:abcd`]);
    expect(ended).toEqual([{ ok: true }]);
    expect(String((await lost) as Error)).toMatch(/connection holding the lock/);
    expect(await leaseA.renew()).toBe(false);
    const b = elector('lost');
    const deadline = Date.now() + 30_000;
    let leaseB = await b.acquire(who(2));
    while (!leaseB && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      leaseB = await b.acquire(who(2));
    }
    expect(leaseB?.holder.pid).toBe(2);
    await leaseA.release();
    await leaseB!.release();
  });

  it('names no password', () => {
    expect(elector().name).not.toContain(pg.password);
    expect(elector().name).toMatch(/^postgres advisory lock -?\d+ \("sched"\) on leader@127\.0\.0\.1:\d+$/);
  });
});
