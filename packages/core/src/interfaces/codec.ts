import type { Duplex } from 'node:stream';

export type CodecKind = 'compression' | 'encryption';

/** What the manifest records of one codec applied to an artifact. */
export interface CodecRecord {
  name: string;
  /** Non-secret parameters, e.g. `{ level: 3 }` or `{ recipients: ['<key id>'] }`. */
  params?: Record<string, unknown>;
}

/**
 * A named pair of stream transforms. Encoders run in configured order on backup and decoders
 * in reverse order on restore; the manifest records which ran so any set can be read back.
 */
export interface Codec {
  readonly specVersion: 'v1';
  /** Stable name recorded in manifests: 'gzip', 'zstd', 'age'. */
  readonly name: string;
  readonly kind: CodecKind;
  /** File name suffix added to artifacts: '.gz', '.zst', '.age'. */
  readonly extension: string;
  encode(): Duplex;
  /** `record` is what `describe()` wrote at backup time. Throws a BackupError if it cannot decode. */
  decode(record?: CodecRecord): Duplex;
  /**
   * Optional: a stream that reads encoded bytes, outputs nothing and fails as `decode` would
   * when they do not decode. The restore's verify pass uses it where the decoded bytes would
   * only be thrown away (`zstd -t` instead of `zstd -d` piped back through Node).
   */
  check?(record?: CodecRecord): Duplex;
  /** Parameters to record in the manifest (never secrets). */
  describe(): CodecRecord;
  /** The shell command that reverses this codec by hand, e.g. 'zstd -d' or 'age -d -i KEY_FILE'. */
  readonly manualDecode: string;
  /**
   * Optional: the encoder as a separate program that reads stdin and writes stdout, or
   * undefined where there is none (or it does not work here). A source whose data comes from a
   * program of its own (pg_dump) can then connect the two with an OS pipe, so the unencoded
   * bytes never pass through Node (see `startExternalEncoder` and `ArtifactOptions.precompressed`).
   * Its output must be exactly what `encode()` produces in format: `decode()` reads either.
   */
  externalEncoder?(): Promise<ExternalEncoder | undefined>;
  /**
   * Optional: the decoder as a separate program (stdin to stdout, `zstd -d -c`), or undefined
   * where there is none. The restore of a local file then runs it on the verified file with an
   * OS pipe into the consuming program (pg_restore), so the decoded bytes never pass through
   * Node. It must fail (exit non-zero) on input that `decode()` would refuse.
   */
  externalDecoder?(record?: CodecRecord): Promise<ExternalDecoder | undefined>;
}

/** A codec's decoder run as its own program (`zstd -d -c`), spawned without a shell. */
export interface ExternalDecoder {
  command: string;
  /** Reads the encoded bytes on stdin, writes the decoded bytes on stdout. */
  args: string[];
  /** Reads the encoded bytes on stdin, writes nothing and exits non-zero when they do not decode (`zstd -t`). */
  checkArgs: string[];
  /** Names the work in messages, e.g. 'zstd decompression'. */
  label: string;
  missingHint: string;
  failureHint: string;
}

/** A codec's encoder run as its own program (`zstd -3 -T0`), spawned without a shell. */
export interface ExternalEncoder {
  command: string;
  /** Passed as an argument array, never through a shell. */
  args: string[];
  /** Names the work in messages, e.g. 'zstd compression'. */
  label: string;
  /** What to do when the program is not installed. */
  missingHint: string;
  /** What to do when it exits non-zero. */
  failureHint: string;
  /**
   * The exact number of bytes the program read, taken from its stderr after it exited with
   * status 0 (the manifest's rawSize); undefined when the stderr does not say.
   */
  inputBytes(stderr: string): number | undefined;
  /** The part of its stderr worth showing in an error (without progress or verbose lines). */
  errorText?(stderr: string): string;
}
