import { Crc64 } from './crc64.js';

/** A DUMP payload ends with a 2-byte little-endian RDB version and an 8-byte CRC-64. */
export const DUMP_FOOTER_LENGTH = 10;

export interface DumpFooter {
  rdbVersion: number;
  /** False when the stored CRC-64 does not match the payload (a zero CRC means "not computed" and counts as valid). */
  crcValid: boolean;
}

export function readDumpFooter(payload: Buffer, checkCrc = false): DumpFooter | undefined {
  if (payload.length < DUMP_FOOTER_LENGTH + 1) return undefined;
  const versionAt = payload.length - DUMP_FOOTER_LENGTH;
  const rdbVersion = payload.readUInt16LE(versionAt);
  if (!checkCrc) return { rdbVersion, crcValid: true };
  const stored = payload.subarray(versionAt + 2);
  if (stored.every((b) => b === 0)) return { rdbVersion, crcValid: true };
  const computed = new Crc64().update(payload.subarray(0, versionAt + 2)).digestLE();
  return { rdbVersion, crcValid: computed.equals(stored) };
}

/** Rewrites the version of a DUMP payload and recomputes its CRC-64 (used to simulate newer servers). */
export function withDumpVersion(payload: Buffer, rdbVersion: number): Buffer {
  const out = Buffer.from(payload);
  const versionAt = out.length - DUMP_FOOTER_LENGTH;
  out.writeUInt16LE(rdbVersion, versionAt);
  new Crc64().update(out.subarray(0, versionAt + 2)).digestLE().copy(out, versionAt + 2);
  return out;
}

/**
 * Highest RDB version a Redis release reads, from the `RDB_VERSION` of each release.
 * RESTORE rejects payloads whose version is higher ("DUMP payload version or checksum are wrong").
 */
const RDB_VERSION_BY_RELEASE: [major: number, minor: number, rdb: number][] = [
  [7, 4, 12],
  [7, 2, 11],
  [7, 0, 10],
  [6, 0, 9],
  [5, 0, 9],
  [4, 0, 8],
  [3, 2, 7],
  [2, 6, 6],
];

export interface TargetRdbSupport {
  rdbVersion: number;
  /** True when the release is newer than the table knows and the version is a lower bound. */
  assumed: boolean;
}

export function rdbVersionForRedis(version: string): TargetRdbSupport | undefined {
  const m = /^(\d+)\.(\d+)/.exec(version);
  if (!m) return undefined;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  const newest = RDB_VERSION_BY_RELEASE[0]!;
  for (const [ma, mi, rdb] of RDB_VERSION_BY_RELEASE) {
    if (major > ma || (major === ma && minor >= mi)) {
      const assumed = major > newest[0] || (major === newest[0] && minor > newest[1]);
      return { rdbVersion: rdb, assumed };
    }
  }
  return undefined;
}
