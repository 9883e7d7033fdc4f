/** What `status()` says of one scheduled job (a tier or the restore drill) at its newest slot. */
export interface SlotStatus {
  /** Nothing is due yet: no slot since the service first started (or it never ran), and no run on record. */
  pending: boolean;
  /** The newest slot passed (beyond the grace) with no run for it. */
  missed: boolean;
}

export interface SlotFacts {
  now: Date;
  /** The job's newest scheduled time up to now, or null when none has come. */
  previousScheduled: Date | null;
  /** When the service first started; null: never; undefined: unknown (the slot may count). */
  since: Date | null | undefined;
  /** When the newest completed run of the job happened (a set's time, a drill's start). */
  lastAt: Date | undefined;
  /** The job is running now. */
  running: boolean;
  missedGraceMs: number;
}

/**
 * The one rule for tiers and the drill: a slot before the service first started is pending, not
 * missed (a fresh install is not an outage); a job running for the first time is pending; a slot
 * is missed once its grace passed without a run at or after it.
 */
export function slotStatus(f: SlotFacts): SlotStatus {
  const prev = f.previousScheduled;
  const beforeService = prev === null || f.since === null || (f.since !== undefined && prev.getTime() < f.since.getTime());
  const missed =
    !beforeService &&
    !f.running &&
    prev !== null &&
    f.now.getTime() - prev.getTime() > f.missedGraceMs &&
    (f.lastAt === undefined || f.lastAt.getTime() < prev.getTime() - f.missedGraceMs);
  return { pending: f.lastAt === undefined && (beforeService || f.running), missed };
}
