import { defineEnvGroup, envDirectory, envPort } from '@scholaria/backup-core';

export const DEFAULT_LOG_DIR = '/var/log/scholaria';

export interface CliEnvSettings {
  logDir: string;
  metricsPort?: number;
}

/** The command's own variables (not the engine's, not an adapter's). */
export const cliEnvGroup = defineEnvGroup({
  name: 'cli',
  title: 'The command (`@scholaria/backup-cli`)',
  env: {
    BACKUP_LOG_DIR: {
      schema: envDirectory,
      path: true,
      default: `\`${DEFAULT_LOG_DIR}\``,
      doc: "folder of the command's log files (`backup-<tier>-<YYYYMMDD>.log`)",
    },
    BACKUP_METRICS_PORT: { schema: envPort, doc: "port of `scheduler run`'s `/metrics` and `/healthz`, 1-65535" },
  },
  configure: ({ values }): CliEnvSettings => ({
    logDir: values.BACKUP_LOG_DIR ?? DEFAULT_LOG_DIR,
    ...(values.BACKUP_METRICS_PORT !== undefined ? { metricsPort: values.BACKUP_METRICS_PORT } : {}),
  }),
});
