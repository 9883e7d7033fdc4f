import type { Readable, Writable } from 'node:stream';
import type { Codec } from './codec.js';
import type { Logger } from './logger.js';
import type { Tier } from './events.js';
import type { ComponentManifest, ArtifactRecord } from '../manifest/manifest-schema.js';
import type { VerifiedLocalFile } from '../pipeline/local-file.js';
import type { LocalDecodedFile } from '../pipeline/local-decoder.js';
import type { FileArtifact } from '../pipeline/file-artifact.js';

export interface ArtifactOptions {
  /** MIME-like type recorded in the manifest, e.g. 'application/x-postgresql-custom-dump'. */
  contentType?: string;
  /**
   * Compression for this artifact: undefined uses the engine's compression codecs, a Codec
   * replaces them for this artifact (pg_dump -Z0 piped to zstd), false stores it uncompressed
   * (already compressed data such as RDB files). Encryption codecs always apply.
   */
  compression?: Codec | false;
  /**
   * The bytes written are already compressed with this codec: the source piped its own program
   * straight into the codec's external encoder (`Codec.externalEncoder`, `startExternalEncoder`).
   * The engine records the codec in the manifest and names the file exactly as if it had applied
   * it (restore and `zstd -d` by hand work unchanged) but does not apply it again; encryption
   * codecs still apply. Takes the place of `compression`. `rawSize()` is the size before
   * compression, for the manifest; it is read once the bytes ended. Use it only when the context
   * says `acceptsPrecompressed`: a context that does not know the option would ignore it.
   */
  precompressed?: { codec: Codec; rawSize: () => number };
  /** How to restore this artifact by hand after the codecs are undone, e.g. 'pg_restore -d DBNAME'. */
  restoreHint?: string;
  /** Extra non-secret facts recorded with the artifact. */
  metadata?: Record<string, unknown>;
}

export interface SourceBackupContext {
  setId: string;
  tier: Tier;
  signal: AbortSignal;
  logger: Logger;
  /**
   * Opens a sink for one artifact: bytes written to it flow through codecs, hashing and every
   * storage. `name` is relative to the component's folder ('scholaria.dump'). The sink
   * finishes only when the artifact is durably stored, so `await pipeline(src, sink)` is enough.
   */
  artifact(name: string, options?: ArtifactOptions): Writable;
  /** Convenience over `artifact()`: pipes a stream or async iterable into it and waits. */
  writeArtifact(name: string, body: Readable | AsyncIterable<Uint8Array>, options?: ArtifactOptions): Promise<void>;
  /** True when `artifact()` honours `ArtifactOptions.precompressed` (the engine's context does). */
  acceptsPrecompressed?: boolean;
  /**
   * Opens an artifact as a file that the source's program writes itself (`fd` as its stdout,
   * as `pg_dump | zstd > file` does in a shell), when the bytes are precompressed, no codec is
   * left to apply but an encryption codec that runs as a program (the `age` program: it then
   * writes the file and the source writes into `file.input`), and the set goes to one storage
   * that creates local files (fs, `LocalFilesCapability.createFile`). Undefined otherwise: use
   * `artifact()`.
   */
  artifactFile?(name: string, options: ArtifactOptions): Promise<FileArtifact | undefined>;
}

/** What `backup()` returns: recorded in the manifest under the component. */
export interface SourceBackupResult {
  /** Non-secret facts: tool and server versions, database/collection names, counts. */
  metadata: Record<string, unknown>;
  warnings?: string[];
}

export interface SourceRestoreContext {
  setId: string;
  signal: AbortSignal;
  logger: Logger;
  /** When true the source must not write to any target; it reports what it would do. */
  dryRun: boolean;
  /** The component's manifest entry: artifacts (name, path, size, sha256) and backup metadata. */
  component: ComponentManifest;
  /** Opens an artifact by name with the codecs undone; the stream errors if its checksum does not match. */
  open(name: string): Promise<Readable>;
  /**
   * The artifact as a local file whose checksum the engine has verified, when the storage keeps
   * it as a plain file and no codec applies to it; undefined otherwise (then use `open`).
   * Optional: older cores do not provide it. Each call opens the file again and refuses it
   * (CHECKSUM_MISMATCH) unless it is still the verified version (same inode, size, mtime and
   * ctime); the caller closes what it gets.
   */
  localFile?(name: string): Promise<VerifiedLocalFile | undefined>;
  /**
   * The artifact as a verified local file when the storage keeps it as a plain file and its one
   * codec has a decoding program (zstd: `zstd -d -c`), with that program; undefined otherwise.
   * Run it with `startFileDecoder` and hand its output to the consumer as stdin, so the decoded
   * bytes never pass through Node. The engine checked the file's checksum and that it decodes
   * (`zstd -t`) before the restore. Optional: older cores do not provide it. The caller closes `file`.
   */
  localDecodedFile?(name: string): Promise<LocalDecodedFile | undefined>;
  /** Restore-time options for this component passed to engine.restore({ componentOptions }). */
  options: Record<string, unknown>;
  /** The engine's IANA time zone, for names and messages a person reads (set ids use it too). */
  timeZone?: string;
}

export interface SourceRestoreResult {
  /** What was (or, on dry-run, would be) done, one line each. */
  plan?: string[];
  metadata?: Record<string, unknown>;
  warnings?: string[];
}

export interface SourceCheckResult {
  ok: boolean;
  /** Server version, tool versions, reachable targets... */
  details?: Record<string, unknown>;
  /** Problems with what to do about each; empty when ok. */
  problems?: string[];
  warnings?: string[];
  /** Facts worth knowing that need no action now (shown with an ok status, not a warning). */
  notes?: string[];
}

export interface SourceVerifyContext {
  component: ComponentManifest;
  signal: AbortSignal;
  logger: Logger;
}

export interface SourceVerifyResult {
  ok: boolean;
  mismatches: string[];
}

/** One data store to back up (pinned v1 interface). */
export interface BackupSource {
  readonly specVersion: 'v1';
  /** Component name used in manifests, paths and `--component`: 'postgres', 'redis', 'qdrant'. */
  readonly name: string;
  backup(ctx: SourceBackupContext): Promise<SourceBackupResult>;
  restore(ctx: SourceRestoreContext): Promise<SourceRestoreResult>;
  /** Reachability, credentials and tool versions; never writes. */
  check(options?: { signal?: AbortSignal }): Promise<SourceCheckResult>;
  /** Compares the live target with the manifest's counts. */
  verify?(ctx: SourceVerifyContext): Promise<SourceVerifyResult>;
  close?(): Promise<void>;
}

export type { ArtifactRecord, VerifiedLocalFile };
