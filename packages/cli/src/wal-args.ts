/**
 * The argument shapes bin.ts sends to the slim WAL entry (wal-main.ts) instead of the full CLI:
 * `wal-push <path>` and `wal-fetch <name> <path>` with only the global options --json,
 * --config PATH, --debug, -q/--quiet, --no-progress, anywhere. Anything else (--help, an
 * unknown option, a missing or extra argument, `--`) is left to the full CLI, which prints
 * the usage error or the help exactly as before. No imports: bin.ts reads this first.
 */
export interface WalFastArgs {
  command: 'wal-push' | 'wal-fetch';
  args: string[];
  json: boolean;
  debug: boolean;
  quiet: boolean;
  progress: boolean;
  configPath?: string;
}

export function walFastArgs(argv: readonly string[]): WalFastArgs | undefined {
  const words: string[] = [];
  const out: Omit<WalFastArgs, 'command' | 'args'> = { json: false, debug: false, quiet: false, progress: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json') out.json = true;
    else if (a === '--debug') out.debug = true;
    else if (a === '-q' || a === '--quiet') out.quiet = true;
    else if (a === '--no-progress') out.progress = false;
    else if (a === '--config') {
      const v = argv[i + 1];
      if (v === undefined || v.startsWith('-')) return undefined;
      out.configPath = v;
      i++;
    } else if (a.startsWith('--config=')) {
      if (a.length === '--config='.length) return undefined;
      out.configPath = a.slice('--config='.length);
    } else if (a.startsWith('-')) return undefined;
    else words.push(a);
  }
  const [command, ...args] = words;
  if (command === 'wal-push' && args.length === 1) return { command, args, ...out };
  if (command === 'wal-fetch' && args.length === 2) return { command, args, ...out };
  return undefined;
}
