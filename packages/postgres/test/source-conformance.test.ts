import { sourceConformance, startPostgres, type PostgresServer } from '@scholaria/backup-testkit';
import { createPostgresSource } from '@scholaria/backup-postgres';
import { createRichFixture, schemaDump, tableChecksums } from './helpers/fixture.js';

sourceConformance({
  name: 'postgres',
  async setup() {
    const server: PostgresServer = await startPostgres({ superuserPassword: 'conformance-Pw-314' });
    await createRichFixture(server, 'scholaria');
    return {
      source: createPostgresSource({ url: server.url('scholaria') }),
      fingerprint: async () => ({ schema: await schemaDump(server, 'scholaria'), data: await tableChecksums(server, 'scholaria') }),
      damage: async () => {
        await server.query('scholaria', 'DELETE FROM rag.chunks WHERE ord % 2 = 0; DROP MATERIALIZED VIEW rag.topic_stats; UPDATE app.users SET name = $$gone$$');
      },
      secrets: [server.password, 'owner-pw-123'],
      teardown: () => server.stop(),
    };
  },
});
