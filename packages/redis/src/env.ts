import { defineAdapter, envIssue, envUrl } from '@scholaria/backup-core';

const redisUrl = envUrl(['redis:', 'rediss:'], 'redis://:password@host:6379/0').transform((s, ctx) => {
  const path = new URL(s).pathname;
  if (path !== '' && path !== '/' && !/^\/\d+$/.test(path)) return envIssue(ctx, 'the path must be a database number like /0');
  return s;
});

/** The Redis source's `.env` descriptor: on when `REDIS_URL` is set. */
export const redisSourceEnv = defineAdapter({
  kind: 'source',
  name: 'redis',
  title: 'Redis source (`@scholaria/backup-redis`)',
  enabledBy: 'REDIS_URL',
  env: {
    REDIS_URL: { schema: redisUrl, url: true, doc: '`redis://` or `rediss://` (TLS) URL, optional `/<db>`' },
  },
  configure: ({ values }): { url: string } | undefined => (values.REDIS_URL ? { url: values.REDIS_URL } : undefined),
  async create(config) {
    const { createRedisSource } = await import('./redis-source.js');
    return createRedisSource({ url: config.url });
  },
});
