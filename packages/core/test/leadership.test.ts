import { describe, expect, it } from 'vitest';
import { createLeadership, type Lease, type LeaderElector, type LeaseHolder } from '@scholaria/backup-core';

// The policy around any elector (the PostgreSQL and S3 ones are tested on real servers in their
// packages and, with three processes, in packages/cli/test/leader-election.test.ts). Here an
// elector whose answers the test scripts, and a clock the test moves; renewals run on the
// leadership's own timer, so the test polls for the outcome with a generous deadline.

function scriptedElector(ttlMs: number) {
  const state = { free: true, renew: 'ok' as 'ok' | 'lost' | 'error', renewCalls: 0, released: 0 };
  const elector: LeaderElector = {
    specVersion: 'v1',
    name: 'scripted',
    ttlMs,
    async acquire(identity) {
      if (!state.free) return undefined;
      state.free = false;
      const holder: LeaseHolder = { ...identity, acquiredAt: new Date().toISOString() };
      const lease: Lease = {
        holder,
        async renew() {
          state.renewCalls++;
          if (state.renew === 'error') throw new Error('network down');
          return state.renew === 'ok';
        },
        async release() {
          state.released++;
          state.free = true;
        },
      };
      return lease;
    },
    async holder() {
      return state.free ? undefined : { owner: 'other:1:x', host: 'other', pid: 1, acquiredAt: new Date(0).toISOString() };
    },
  };
  return { elector, state };
}

async function until(what: string, condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('createLeadership', () => {
  it('leads when the lease is free, follows when it is not, and gives it up on stop', async () => {
    const { elector, state } = scriptedElector(3000);
    state.free = false;
    const l = createLeadership(elector, { intervalMs: 10 });
    expect(await l.ensure()).toBe(false);
    expect(l.status()).toMatchObject({ leader: false, holder: { host: 'other' } });
    state.free = true;
    expect(await l.ensure()).toBe(true);
    expect(l.signal?.aborted).toBe(false);
    await l.stop();
    expect(state.released).toBe(1);
    expect(l.isLeader).toBe(false);
  });

  it('a renewal that says the lease is gone ends the tenure at once (its signal aborts)', async () => {
    const { elector, state } = scriptedElector(3000);
    const l = createLeadership(elector, { intervalMs: 10 });
    l.start();
    await until('leading', () => l.isLeader);
    const signal = l.signal!;
    state.renew = 'lost';
    await until('the tenure ends', () => signal.aborted);
    expect(String((signal.reason as Error).message)).toMatch(/another replica holds the lease/);
    await l.stop();
  });

  it('failed renewals end the tenure only after two thirds of the TTL without a successful one', async () => {
    let now = 0;
    const { elector, state } = scriptedElector(3000);
    const l = createLeadership(elector, { intervalMs: 10, now: () => now });
    l.start();
    await until('leading', () => l.isLeader);
    const signal = l.signal!;
    state.renew = 'error';
    const calls = state.renewCalls;
    now = 1500; // half the TTL: keep trying
    await until('a few failed renewals', () => state.renewCalls >= calls + 3);
    expect(signal.aborted).toBe(false);
    now = 2100; // past two thirds of it
    await until('the tenure ends', () => signal.aborted);
    expect(String((signal.reason as Error).message)).toMatch(/could not renew it for 2 s: network down/);
    expect(l.isLeader).toBe(false);
    await l.stop();
  });
});
