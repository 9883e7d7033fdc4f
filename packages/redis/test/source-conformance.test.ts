import { Redis } from 'ioredis';
import { sourceConformance, startRedis } from '@scholaria/backup-testkit';
import { createRedisSource } from '@scholaria/backup-redis';
import { fingerprint, loadFixture } from './helpers/fixture.js';

const PASSWORD = 'conformance-secret-42';
const ALL_DBS = Array.from({ length: 16 }, (_, i) => i);

sourceConformance({
  name: 'redis logical',
  setup: async () => {
    const server = await startRedis({ password: PASSWORD });
    await loadFixture(server.url());
    return {
      source: createRedisSource({ url: server.url() }),
      fingerprint: () => fingerprint(server.url(), ALL_DBS),
      async damage() {
        const r = new Redis(server.url());
        await r.flushall();
        await r.select(7);
        await r.set('not-in-the-backup', 'x');
        r.disconnect();
      },
      secrets: [PASSWORD],
      teardown: () => server.stop(),
    };
  },
});
