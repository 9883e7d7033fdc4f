import { join } from 'node:path';

/** The commands that audit and alert per failure streak (wal-alerts.ts). */
export type WalAction = 'wal-push' | 'wal-fetch' | 'wal-receive';

/**
 * The file holding a running failure streak of `action` (wal-alerts.ts). Its own small module:
 * wal-push checks for it after every success without loading the notifier code.
 */
export const walFailureStatePath = (rt: { logDir: string }, action: WalAction) => join(rt.logDir, `${action}-failing.json`);
