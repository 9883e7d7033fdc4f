/**
 * A retention policy with restic `forget` semantics; the fields are restic's `--keep-*` flags in
 * camelCase. A set is kept when at least one rule keeps it.
 *
 * Counts are whole numbers: `n > 0` keeps the newest set of each of the `n` newest calendar
 * buckets (hour, day, ISO week, month, year) that have sets, `-1` keeps one per bucket without
 * limit, `0` or absent switches the rule off. `within*` are restic durations (`7d`, `1y2m`,
 * `36h`; m = months) measured back from the newest set that is not in the future.
 */
export interface RetentionPolicy {
  /** Keep the `n` newest sets (`--keep-last`). */
  last?: number;
  /** Keep the newest set of each of the `n` newest hours that have sets (`--keep-hourly`). */
  hourly?: number;
  /** Same per calendar day (`--keep-daily`). */
  daily?: number;
  /** Same per ISO week (`--keep-weekly`). */
  weekly?: number;
  /** Same per calendar month (`--keep-monthly`). */
  monthly?: number;
  /** Same per calendar year (`--keep-yearly`). */
  yearly?: number;
  /** Keep every set newer than the newest set minus this duration (`--keep-within`). */
  within?: string;
  /** Keep the newest set of each hour within this duration (`--keep-within-hourly`). */
  withinHourly?: string;
  /** Keep the newest set of each day within this duration (`--keep-within-daily`). */
  withinDaily?: string;
  /** Keep the newest set of each ISO week within this duration (`--keep-within-weekly`). */
  withinWeekly?: string;
  /** Keep the newest set of each month within this duration (`--keep-within-monthly`). */
  withinMonthly?: string;
  /** Keep the newest set of each year within this duration (`--keep-within-yearly`). */
  withinYearly?: string;
  /**
   * Keep every set carrying all tags of at least one of these lists (`--keep-tag`; an OR of
   * AND-lists). The tag `''` matches sets without tags.
   */
  tags?: string[][];
}

export const RETENTION_COUNT_FIELDS = ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;
export const RETENTION_WITHIN_FIELDS = [
  'within',
  'withinHourly',
  'withinDaily',
  'withinWeekly',
  'withinMonthly',
  'withinYearly',
] as const;

export type RetentionCountField = (typeof RETENTION_COUNT_FIELDS)[number];
export type RetentionWithinField = (typeof RETENTION_WITHIN_FIELDS)[number];

/** A set the planner decides about. `time` is a Date or an ISO 8601 string with a UTC offset. */
export interface RetentionCandidate {
  id: string;
  time: Date | string;
  tags?: string[];
}

/** Budget left in each count rule after a kept set (`-1` = unlimited, `0` = used up or off). */
export interface RetentionCounters {
  last: number;
  hourly: number;
  daily: number;
  weekly: number;
  monthly: number;
  yearly: number;
}

export interface RetentionKeep {
  id: string;
  /** restic's reason strings: `daily snapshot`, `oldest yearly snapshot`, `within 7d`, `has tags [a, b]`. */
  reasons: string[];
  counters: RetentionCounters;
}

export interface RetentionPlan {
  /** Newest first. */
  keep: RetentionKeep[];
  /** Newest first. */
  remove: { id: string }[];
}

export interface PlanRetentionOptions {
  /**
   * Sets later than `now` are "in the future" and do not anchor the `within*` windows (restic
   * takes the newest set before now). Default: the current time.
   */
  now?: Date;
  /**
   * IANA zone whose calendar defines hours, days, weeks, months and years. Default: each time
   * string's own UTC offset (restic's behaviour), and UTC for Date objects.
   */
  timeZone?: string;
  /**
   * restic's library semantics for an empty policy (remove everything). Off by default: an
   * empty policy is refused with RETENTION_INVALID, as `restic forget` refuses it.
   */
  allowEmptyPolicy?: boolean;
}
