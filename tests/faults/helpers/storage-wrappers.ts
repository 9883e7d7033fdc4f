import { Transform, type Readable, type TransformCallback } from 'node:stream';
import type { Storage } from '@scholaria/backup-core';

const matches = (pattern: string | RegExp, key: string) => (typeof pattern === 'string' ? key.includes(pattern) : pattern.test(key));

/**
 * The wrapped storage's capabilities without `localFiles.createFile`: a wrapper that acts on
 * puts must see every write, and with createFile a program would write the dump file itself.
 */
export function putCapabilities(inner: Storage): Pick<Storage, 'capabilities'> {
  const caps = inner.capabilities;
  if (!caps?.localFiles?.createFile) return caps ? { capabilities: caps } : {};
  const { createFile: _bypassesPut, ...localFiles } = caps.localFiles;
  return { capabilities: { ...caps, localFiles } };
}

/** Puts of matching keys start only after `ms`: a slow disk, NFS or a high-latency bucket. */
export function delayedPuts(inner: Storage, pattern: string | RegExp, ms: number): Storage {
  return {
    ...inner,
    ...putCapabilities(inner),
    async put(key, body, options) {
      if (matches(pattern, key)) await new Promise((r) => setTimeout(r, ms));
      return await inner.put(key, body, options);
    },
  };
}

export interface Gate {
  storage: Storage;
  /** Resolves when a matching put has passed `afterBytes` and is held. */
  reached: Promise<string>;
  /** Lets the held put continue. */
  release(): void;
}

/**
 * Holds the first matching put once `afterBytes` went through, until `release()`: the source
 * behind it is then blocked mid-stream by backpressure, which is where the tests inject faults.
 */
export function gatedPuts(inner: Storage, pattern: string | RegExp, afterBytes: number): Gate {
  let armed = true;
  let onReached!: (key: string) => void;
  const reached = new Promise<string>((r) => (onReached = r));
  let opened!: () => void;
  const open = new Promise<void>((r) => (opened = r));
  return {
    reached,
    release: () => opened(),
    storage: {
      ...inner,
      ...putCapabilities(inner),
      async put(key, body, options) {
        if (!armed || !matches(pattern, key)) return await inner.put(key, body, options);
        armed = false;
        let seen = 0;
        let held = false;
        const gate = new Transform({
          transform(chunk: Buffer, _enc, cb: TransformCallback) {
            seen += chunk.length;
            if (held || seen < afterBytes) return cb(null, chunk);
            held = true;
            onReached(key);
            void open.then(() => cb(null, chunk));
          },
          flush(cb) {
            if (!held) {
              held = true;
              onReached(key);
            }
            void open.then(() => cb());
          },
        });
        (body as Readable).on('error', (e) => gate.destroy(e));
        (body as Readable).pipe(gate);
        return await inner.put(key, gate, options);
      },
    },
  };
}

/** Holds every get of a matching key until released (a restore that is reading slowly). */
export function gatedGets(inner: Storage, pattern: string | RegExp): { storage: Storage; reached: Promise<string>; release(): void } {
  let onReached!: (key: string) => void;
  const reached = new Promise<string>((r) => (onReached = r));
  let opened!: () => void;
  const open = new Promise<void>((r) => (opened = r));
  return {
    reached,
    release: () => opened(),
    storage: {
      ...inner,
      async get(key, options) {
        if (matches(pattern, key)) {
          onReached(key);
          await open;
        }
        return await inner.get(key, options);
      },
    },
  };
}
