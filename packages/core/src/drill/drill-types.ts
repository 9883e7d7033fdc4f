import type { Logger } from '../interfaces/logger.js';
import type { ComponentManifest, Manifest } from '../manifest/manifest-schema.js';
import type { ErrorReport, ProgressEvent } from '../interfaces/events.js';
import type { BackupSource } from '../interfaces/source.js';

export type DrillCheckStatus = 'pass' | 'fail' | 'skipped';

/** One check of a drill, with the figures it found and the first mismatches. */
export interface DrillCheck {
  /** 'counts', 'amcheck', 'cross-store', 'celery-queues', ... */
  name: string;
  component?: string;
  status: DrillCheckStatus;
  /** One line with the figures: 'chunks 1200/1200 rows match the manifest'. */
  message: string;
  figures?: Record<string, number>;
  /** The first few mismatches (limited by `maxMismatches`). */
  mismatches?: string[];
}

export interface DrillTargetContext {
  drillId: string;
  setId: string;
  manifest: Manifest;
  component: ComponentManifest;
  signal: AbortSignal;
  logger: Logger;
  /** How many mismatches a check lists at most. */
  maxMismatches: number;
}

export interface DrillSweepContext {
  /** The id of the drill that is running now: its targets are not leftovers. */
  except?: string;
  /** The component of the set about to be drilled (lets a target refuse unsafe settings before it removes anything). */
  component?: ComponentManifest;
  signal: AbortSignal;
  logger: Logger;
}

/** One side of a cross-store join: where the ids live in a restored component. */
export interface JoinSide {
  component: string;
  /** PostgreSQL: table ('chunks' or 'schema.table') and column holding the id. */
  table?: string;
  column?: string;
  /** PostgreSQL: the database of the set when it holds more than one. */
  database?: string;
  /** Qdrant: collection; the id is the point id unless `payloadField` names a payload field. */
  collection?: string;
  payloadField?: string;
}

/** Every id on `left` must exist on `right` and the other way round (no orphan). */
export interface CrossStoreJoin {
  name?: string;
  left: JoinSide;
  right: JoinSide;
}

/**
 * A throwaway restore target for one component (postgres database `scholaria_drill_<id>`,
 * a Redis database index kept for drills, a Qdrant collection `<name>_drill_<id>`). The drill
 * restores through the engine's own source with the options `prepare` returns, so the path
 * tested is the path a real restore takes.
 */
export interface DrillTarget {
  readonly specVersion: 'v1';
  /** The component (source name) this target takes. */
  readonly component: string;
  /**
   * The source the drill's restore goes through when the throwaway target is on another server
   * than the live one (a PostgreSQL drill server); it carries the component's name. Default: the
   * engine's own source of the component.
   */
  readonly source?: BackupSource;
  /** Where the copy goes, for output and the record: 'database "scholaria_drill_…"'. */
  describe(ctx: DrillTargetContext): string;
  /**
   * Restore-time options for the component that send the restore into the throwaway target.
   * Refuses (throws) when the target is not safe to write: a name that exists and is not a
   * drill's, a Redis database that holds keys and no drill marker.
   */
  prepare(ctx: DrillTargetContext): Promise<Record<string, unknown>>;
  /** Checks of the restored copy against the manifest. */
  check(ctx: DrillTargetContext): Promise<DrillCheck[]>;
  /** The ids the restored copy holds on one side of a join (cross-store check). */
  joinKeys?(ctx: DrillTargetContext, side: JoinSide): AsyncIterable<string>;
  /** Removes this drill's throwaway target; safe to call when nothing was created. Returns what it removed. */
  cleanup(ctx: DrillTargetContext): Promise<string[]>;
  /**
   * Removes throwaway targets left by earlier (killed) drills, found by name, but only those whose
   * drill is provably gone (the PostgreSQL target asks the server whether the owner's session
   * still holds its advisory lock). Returns what it removed.
   */
  sweep(ctx: DrillSweepContext): Promise<string[]>;
  close?(): Promise<void>;
}

export interface DrillOptions {
  /** 'latest' (newest complete set, the default) or a set id. */
  ref?: string;
  targets: DrillTarget[];
  /** Only these components (default: every component of the set that has a target). */
  components?: string[];
  joins?: CrossStoreJoin[];
  /** Mismatches listed per check, default 10. */
  maxMismatches?: number;
  signal?: AbortSignal;
  onProgress?: (event: ProgressEvent) => void;
}

export interface DrillComponentResult {
  name: string;
  target: string;
  status: 'ok' | 'failed';
  /** Time to restore this component (the measured RTO), ms. */
  restoreMs: number;
  error?: ErrorReport;
}

export interface DrillResult {
  drillId: string;
  setId: string;
  tier: string;
  status: 'passed' | 'failed';
  startedAt: string;
  finishedAt: string;
  /** Measured RTO: checksum verification and restore of the whole set, and per component, ms. */
  rto: { totalMs: number; components: Record<string, number> };
  components: DrillComponentResult[];
  checks: DrillCheck[];
  /** Throwaway targets of earlier drills removed before this one started. */
  removedLeftovers: string[];
  /** This drill's targets removed at the end. */
  cleanedUp: string[];
  /** Targets that could not be removed (the next drill retries). */
  cleanupProblems: string[];
  error?: ErrorReport;
}
