type Cleanup = () => Promise<void> | void;
const cleanups = new Set<Cleanup>();
let hooked = false;

/**
 * Registers a cleanup that runs when the process exits, even when a test failed before its
 * own `stop()`. Returns a function that unregisters it (call after a normal stop).
 */
export function registerCleanup(fn: Cleanup): () => void {
  cleanups.add(fn);
  if (!hooked) {
    hooked = true;
    const runAll = () => {
      for (const c of cleanups) {
        try {
          void c();
        } catch {
          // best effort at exit
        }
      }
      cleanups.clear();
    };
    process.once('exit', runAll);
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.once(signal, () => {
        runAll();
        process.exit(130);
      });
    }
  }
  return () => cleanups.delete(fn);
}
