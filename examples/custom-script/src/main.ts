/**
 * node --import tsx examples/custom-script/src/main.ts run                       # hourly, until Ctrl-C
 * node --import tsx examples/custom-script/src/main.ts backup                    # one backup now
 * node --import tsx examples/custom-script/src/main.ts restore chunks [--as chunks_copy]
 *
 * QDRANT_URL, QDRANT_API_KEY; S3_BUCKET, S3_PREFIX, S3_REGION, S3_ENDPOINT (MinIO, R2...);
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are read by the AWS SDK.
 */
import { parseArgs } from 'node:util';
import { createVectorBackup } from './vector-backup.js';

const { positionals, values } = parseArgs({ allowPositionals: true, options: { as: { type: 'string' } } });
const env = process.env;
const { engine, scheduler, restoreCollection } = createVectorBackup({
  qdrant: { url: env.QDRANT_URL ?? 'http://localhost:6333', ...(env.QDRANT_API_KEY ? { apiKey: env.QDRANT_API_KEY } : {}) },
  s3: {
    bucket: env.S3_BUCKET ?? 'scholaria-backups',
    prefix: env.S3_PREFIX ?? 'vectors',
    ...(env.S3_REGION ? { region: env.S3_REGION } : {}),
    ...(env.S3_ENDPOINT ? { endpoint: env.S3_ENDPOINT } : {}),
  },
});

const [command, collection] = positionals;
if (command === 'run') {
  scheduler.start();
  console.log(`next: ${scheduler.nextRuns().map((r) => `${r.tier} ${r.next?.toISOString()}`).join(', ')}`);
  process.once('SIGINT', () => void scheduler.stop({ abort: true }).then(() => engine.close()));
} else if (command === 'backup') {
  const result = await engine.backup({ tier: 'hourly', onProgress: (p) => p.done && console.log(`${p.component}/${p.artifact}: ${p.bytes} bytes`) });
  console.log(`${result.setId}: ${result.status}`);
  await engine.prune();
  await engine.close();
  process.exitCode = result.status === 'complete' ? 0 : 1;
} else if (command === 'restore' && collection) {
  const result = await restoreCollection(collection, values.as);
  for (const c of result.components) console.log(`${c.name}: ${c.status}\n  ${c.plan.join('\n  ')}`);
  await engine.close();
  process.exitCode = result.status === 'ok' ? 0 : 1;
} else {
  console.error('usage: main.ts run | backup | restore <collection> [--as <name>]');
  process.exitCode = 2;
}
