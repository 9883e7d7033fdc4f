import type { BackupEngineOptions } from '../engine/types.js';

/** What a `scholaria-backup.config.ts` file exports: engine options plus the CLI's own settings. */
export type ScholariaBackupConfig = BackupEngineOptions & {
  /** Cron per tier, e.g. `{ daily: '0 2 * * *' }`; evaluated in `timeZone`. */
  schedules?: Partial<Record<'daily' | 'weekly' | 'monthly', string>>;
  /** Folder for the CLI's log files. */
  logDir?: string;
  /** Port for the scheduler's metrics endpoint. */
  metricsPort?: number;
  /** Restore drills (docs/drills.md): schedule (cron or 'off', default weekly), targets, cross-store joins. */
  drill?: {
    schedule?: string;
    targets?: import('../drill/drill-types.js').DrillTarget[];
    joins?: import('../drill/drill-types.js').CrossStoreJoin[];
    maxMismatches?: number;
  };
  /**
   * Several `scheduler run` replicas: only the holder of this elector's lease runs a slot
   * (docs/scaling.md), e.g. `createPostgresLeaderElector({ connection: { url }, name: 'scholaria' })`.
   */
  leaderElection?: import('../scheduler/leader-elector.js').LeaderElector;
};

/** Identity function that gives a config file type checking and editor completion. */
export function defineConfig(config: ScholariaBackupConfig): ScholariaBackupConfig {
  return config;
}
