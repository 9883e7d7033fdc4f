import { createFsStorage } from '@scholaria/backup-fs';
import { makeTempDir, storageConformance } from '@scholaria/backup-testkit';

storageConformance({ name: 'fs', create: async () => { const dir = await makeTempDir(); return { storage: createFsStorage({ root: `${dir.path}/root` }), cleanup: dir.remove }; } });
