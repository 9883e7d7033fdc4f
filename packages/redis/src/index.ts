export { createRedisSource, LOGICAL_ARTIFACT, RDB_ARTIFACT, LOGICAL_CONTENT_TYPE, RDB_CONTENT_TYPE, RDB_RESTORE_PROCEDURE } from './redis-source.js';
export {
  redisSourceOptionsSchema,
  redisRestoreOptionsSchema,
  type RedisSourceOptions,
  type RedisRestoreOptions,
  type SecretValue,
} from './redis-options.js';
export { readDumpFooter, withDumpVersion, rdbVersionForRedis, DUMP_FOOTER_LENGTH, type DumpFooter, type TargetRdbSupport } from './rdb-version.js';
export { crc64, Crc64 } from './crc64.js';
export { RespCommandReader, RespFormatError } from './resp-reader.js';
export { RespWriter, encodeCommand } from './resp-writer.js';
export { redisSourceEnv } from './env.js';
