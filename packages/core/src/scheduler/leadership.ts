import { BackupError } from '../errors/backup-error.js';
import type { Logger } from '../interfaces/logger.js';
import { silentLogger } from '../interfaces/logger.js';
import { describeHolder, leaderIdentity, type Lease, type LeaderElector, type LeaderIdentity, type LeaseHolder } from './leader-elector.js';

export interface LeadershipStatus {
  elector: string;
  /** This replica holds the lease now. */
  leader: boolean;
  self: LeaderIdentity;
  /** The holder the last attempt saw (this replica when leader). */
  holder?: LeaseHolder;
}

export interface Leadership {
  /** Starts campaigning: try to acquire (or renew) every third of the TTL. */
  start(): void;
  /** Becomes the leader now if the lease is free; true when this replica leads. */
  ensure(): Promise<boolean>;
  /** Aborted when the current tenure ends (lease lost or given up); a fresh signal per tenure. */
  readonly signal: AbortSignal | undefined;
  readonly isLeader: boolean;
  status(): LeadershipStatus;
  /** Stops campaigning and releases the lease. */
  stop(): Promise<void>;
}

export interface LeadershipOptions {
  logger?: Logger;
  identity?: LeaderIdentity;
  /** How often to renew or campaign; default a third of the elector's TTL. */
  intervalMs?: number;
  /** Time source for the renewal deadline (monotonic by default). */
  now?: () => number;
}

/**
 * The policy around a LeaderElector: one lease per process, renewed every third of its TTL;
 * a replica that cannot renew for two thirds of the TTL, or learns the lease was taken, ends
 * its tenure (aborting `signal`) before any other replica may take over; followers campaign on
 * the same interval, so a dead leader is replaced within about one TTL.
 */
export function createLeadership(elector: LeaderElector, options: LeadershipOptions = {}): Leadership {
  const logger = options.logger ?? silentLogger;
  const identity = options.identity ?? leaderIdentity();
  const now = options.now ?? (() => performance.now());
  const ttlMs = elector.ttlMs;
  const intervalMs = options.intervalMs ?? Math.max(100, Math.floor(ttlMs / 3));
  let lease: Lease | undefined;
  let tenure: AbortController | undefined;
  let lastRenewed = 0;
  let holder: LeaseHolder | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = true;
  let chain: Promise<unknown> = Promise.resolve();
  let lastAcquireError: string | undefined;

  /** One attempt at a time: the campaign timer and a slot's `ensure` never race each other. */
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = chain.then(fn, fn);
    chain = next.catch(() => undefined);
    return next;
  };

  function endTenure(why: string): void {
    const ended = lease;
    lease = undefined;
    holder = undefined;
    tenure?.abort(new BackupError('ABORTED', `this replica lost the scheduler leadership (${elector.name}): ${why}`, {
      hint: 'Another replica leads now; nothing this replica had half-written is published. See docs/scaling.md.',
    }));
    tenure = undefined;
    logger.warn(`leadership lost (${elector.name}): ${why}`);
    void ended?.release();
  }

  async function acquire(): Promise<boolean> {
    if (lease) return true;
    try {
      const got = await elector.acquire(identity);
      lastAcquireError = undefined;
      if (!got) {
        holder = await elector.holder().catch(() => undefined);
        return false;
      }
      lease = got;
      holder = got.holder;
      lastRenewed = now();
      const controller = new AbortController();
      tenure = controller;
      got.lost?.addEventListener('abort', () => {
        if (lease === got) endTenure(String((got.lost!.reason as Error | undefined)?.message ?? got.lost!.reason ?? 'the lease ended'));
      }, { once: true });
      logger.info(`this replica is the scheduler leader (${elector.name})`, { owner: identity.owner });
      return true;
    } catch (error) {
      const message = (error as Error).message;
      if (message !== lastAcquireError) logger.warn(`cannot campaign for the scheduler leadership (${elector.name}): ${message}`);
      lastAcquireError = message;
      return false;
    }
  }

  async function renew(): Promise<void> {
    const current = lease;
    if (!current) return;
    const startedAt = now();
    try {
      const ok = await current.renew();
      if (lease !== current) return;
      if (!ok) {
        endTenure('another replica holds the lease now');
        return;
      }
      lastRenewed = startedAt;
    } catch (error) {
      if (lease !== current) return;
      const silentFor = now() - lastRenewed;
      if (silentFor >= (ttlMs * 2) / 3) endTenure(`could not renew it for ${Math.round(silentFor / 1000)} s: ${(error as Error).message}`);
      else logger.warn(`cannot renew the scheduler lease (${elector.name}), retrying: ${(error as Error).message}`);
    }
  }

  function schedule(): void {
    if (stopped) return;
    timer = setTimeout(() => {
      void serial(async () => (lease ? await renew() : await acquire())).finally(schedule);
    }, intervalMs);
    timer.unref?.();
  }

  return {
    start() {
      if (!stopped) return;
      stopped = false;
      void serial(acquire).finally(schedule);
    },
    ensure: () => serial(async () => (lease ? true : await acquire())),
    get signal() {
      return tenure?.signal;
    },
    get isLeader() {
      return lease !== undefined;
    },
    status: () => ({ elector: elector.name, leader: lease !== undefined, self: identity, ...(holder ? { holder } : {}) }),
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await serial(async () => {
        const current = lease;
        lease = undefined;
        tenure = undefined;
        if (current) {
          await current.release();
          logger.info(`released the scheduler leadership (${elector.name})`);
        }
      });
    },
  };
}

export { describeHolder };
