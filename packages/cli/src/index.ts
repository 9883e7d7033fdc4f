export { runCli } from './cli.js';
export { defaultIo, Output, type CliIo } from './cli-io.js';
export { EXIT, exitCodeForError, type ExitCode } from './exit-codes.js';
export { createRuntime, DEFAULT_LOG_DIR, type CliRuntime } from './runtime.js';
export { engineOptionsFromEnv, type EnvEngineParts } from './env-runtime.js';
export { CONFIG_FILE_NAMES, findConfigFile, importConfigFile } from './load-config.js';
export { loggerFromPino, openRunLog, LogHub, type RunLogFile } from './run-log.js';
export { SchedulerMetrics, startMetricsServer, type MetricsServer, type MetricsServerOptions } from './metrics.js';
export { SHIPPED_ADAPTERS, envDescriptorsOf } from './adapters.js';
export { cliEnvGroup, type CliEnvSettings } from './cli-env.js';
export {
  loadEnvConfig,
  secretsFromEnvConfig,
  envConfigFrom,
  ENV_VARIABLES,
  type EnvConfig,
  type EnvComponent,
  type NotifyOn,
  type WebhookKind,
  type S3Provider,
  type SmtpEnvConfig,
  type EnvIssue,
} from './env-config.js';
export { envDocsTable } from './env-docs.js';
