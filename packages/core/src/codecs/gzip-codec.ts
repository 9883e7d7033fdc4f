import { createGunzip, createGzip } from 'node:zlib';
import { z } from 'zod';
import type { Codec, CodecRecord } from '../interfaces/codec.js';
import { assertRecordFor, codecFailure, isZlibError, mapStreamErrors, parseCodecOptions } from './codec-support.js';

export const gzipCodecOptionsSchema = z
  .object({
    /** zlib level: 1 fastest ... 9 smallest. */
    level: z.number().int().min(1).max(9).default(6),
  })
  .strict();

export type GzipCodecOptions = z.input<typeof gzipCodecOptionsSchema>;

/** gzip (RFC 1952) through Node's zlib: readable with `gunzip` anywhere. */
export function createGzipCodec(options: GzipCodecOptions = {}): Codec {
  const { level } = parseCodecOptions(gzipCodecOptionsSchema, options, 'createGzipCodec');
  return {
    specVersion: 'v1',
    name: 'gzip',
    kind: 'compression',
    extension: '.gz',
    manualDecode: 'gunzip',
    encode: () => mapStreamErrors(createGzip({ level }), (e) => (isZlibError(e) ? codecFailure('gzip', 'encode', e) : e)),
    decode: (record?: CodecRecord) => {
      assertRecordFor('gzip', record);
      return mapStreamErrors(createGunzip(), (e) => (isZlibError(e) ? codecFailure('gzip', 'decode', e) : e));
    },
    describe: () => ({ name: 'gzip', params: { level } }),
  };
}
