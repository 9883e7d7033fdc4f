export { runCli } from './cli.js';
export { defaultIo, Output, type CliIo } from './cli-io.js';
export { EXIT, exitCodeForError, type ExitCode } from './exit-codes.js';
export { createRuntime, DEFAULT_LOG_DIR, type CliRuntime } from './runtime.js';
export { engineOptionsFromEnv, type EnvEngineParts } from './env-runtime.js';
export { CONFIG_FILE_NAMES, findConfigFile, importConfigFile } from './load-config.js';
export { loggerFromPino, openRunLog, LogHub, type RunLogFile } from './run-log.js';
export { SchedulerMetrics, startMetricsServer, type MetricsServer, type MetricsServerOptions } from './metrics.js';
