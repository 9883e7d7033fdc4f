import type { Logger } from '@scholaria/backup-core';
import { createConnector, resolveConnection, type ConnectionParams, type Connector } from './connection.js';
import type { ConnectionArgs } from './pg-dump-args.js';
import type { ToolPaths } from './pg-tools.js';
import type { ResolvedPostgresOptions } from './postgres-options.js';

/** Everything a backup, restore or check needs, built once by the factory without any I/O. */
export interface Runtime {
  name: string;
  options: ResolvedPostgresOptions;
  params: ConnectionParams;
  connector: Connector;
  tools: ToolPaths;
  password(): Promise<string | undefined>;
  /** Secrets to redact from every message (the password, once known). */
  secrets(): string[];
  /** host/port/user for the tools' argv (never the password). */
  connArgs(): ConnectionArgs;
  /** The databases backed up: `databases`, or the one of the url/fields/client. */
  databases(): Promise<string[]>;
  logger?: Logger;
}

export function createRuntime(options: ResolvedPostgresOptions): Runtime {
  const params = resolveConnection(options);
  const connector = createConnector(params, options.name, options.client);
  const rt: Runtime = {
    name: options.name,
    options,
    params,
    connector,
    tools: {
      binDir: options.binDir,
      pgDumpPath: options.pgDumpPath,
      pgRestorePath: options.pgRestorePath,
      pgDumpallPath: options.pgDumpallPath,
    },
    async password() {
      const p = params.password;
      const value = typeof p === 'function' ? await p() : p;
      return value;
    },
    secrets: () => connector.secrets(),
    connArgs: () => ({ host: params.host, port: params.port, user: params.user }),
    async databases() {
      const d = options.databases;
      if (Array.isArray(d)) return d;
      if (d === 'all') {
        const session = await connector.connect(params.database ?? options.maintenanceDatabase);
        try {
          const r = await session.client.query<{ datname: string }>(
            'SELECT datname FROM pg_catalog.pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname',
          );
          return r.rows.map((x) => x.datname);
        } finally {
          await session.release();
        }
      }
      return [params.database as string];
    },
  };
  return rt;
}
