import { Duplex } from 'node:stream';

export type StreamPhase = 'setup' | 'data';

/**
 * A Node Duplex around an async web-stream transform (the shape of age-encryption's
 * `encrypt(stream)` / `decrypt(stream)`). Backpressure flows both ways through the web
 * streams, so memory stays bounded by a few chunks whatever the artifact size. Every error
 * passes through `mapError`, told whether it happened while setting up (the age header) or
 * while streaming the payload.
 */
export function webTransformDuplex(
  transform: (input: ReadableStream<Uint8Array>) => Promise<ReadableStream<Uint8Array>>,
  mapError: (error: unknown, phase: StreamPhase) => Error,
): Duplex {
  // Node may hand strings to a non-objectMode writable; the age transforms need bytes.
  const bridge = new TransformStream<Uint8Array | string, Uint8Array>({
    transform(chunk, controller) {
      controller.enqueue(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    },
  });
  let started: Promise<ReadableStream<Uint8Array>>;
  try {
    started = transform(bridge.readable);
  } catch (error) {
    started = Promise.reject(error);
  }
  // Observed in pull(); this keeps a never-read duplex from raising an unhandled rejection.
  started.catch(() => {});

  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  const output = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (!reader) {
          try {
            reader = (await started).getReader();
          } catch (error) {
            controller.error(mapError(error, 'setup'));
            return;
          }
        }
        try {
          const { done, value } = await reader.read();
          if (done) controller.close();
          else controller.enqueue(value);
        } catch (error) {
          controller.error(mapError(error, 'data'));
        }
      },
      async cancel(reason) {
        if (reader) await reader.cancel(reason).catch(() => {});
        else await started.then((s) => s.cancel(reason), () => {}).catch(() => {});
      },
    },
    { highWaterMark: 0 },
  );
  return Duplex.fromWeb({ readable: output, writable: bridge.writable });
}
