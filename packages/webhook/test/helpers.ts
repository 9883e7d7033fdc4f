import { afterEach } from 'vitest';
import type { Notifier, NotifyOutcome } from '@scholaria/backup-core';
import { startHttpCapture, type CapturedRequest, type HttpCapture, type StartHttpCaptureOptions } from '@scholaria/backup-testkit';

/** Conformance harness over a real HTTP capture server; `received` lists the requests the receiver accepted. */
export async function httpHarness(
  make: (baseUrl: string, on?: NotifyOutcome[]) => Notifier,
  captureOptions: StartHttpCaptureOptions = {},
  on?: NotifyOutcome[],
  view: (r: CapturedRequest) => unknown = (r) => r.json ?? r.body.toString('utf8'),
) {
  const capture = await startHttpCapture(captureOptions);
  const respond = captureOptions.respond;
  // A request answered with an error (or never) is not a delivery: ask the same respond function.
  const accepted = (index: number) => {
    const answer = respond?.(capture.requests[index] as CapturedRequest, index);
    return !answer?.hang && (answer?.status ?? 200) < 300;
  };
  return {
    notifier: make(capture.url, on),
    received: async () => capture.requests.filter((_, i) => accepted(i)).map(view),
    cleanup: capture.stop,
  };
}

/** Starts capture servers inside a describe block and stops them after each test. */
export function useCaptures() {
  const captures: HttpCapture[] = [];
  afterEach(async () => {
    while (captures.length) await captures.pop()?.stop();
  });
  return async (options?: StartHttpCaptureOptions) => {
    const c = await startHttpCapture(options);
    captures.push(c);
    return c;
  };
}

export const logCollector = () => {
  const warnings: string[] = [];
  return {
    warnings,
    logger: { debug() {}, info() {}, error() {}, warn: (m: string) => void warnings.push(m) },
  };
};
