import { readFile } from 'node:fs/promises';
import { expect, it } from 'vitest';
import { LIBRARY_VERSION } from '@scholaria/backup-core';

it('LIBRARY_VERSION matches package.json', async () => {
  const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));
  expect(LIBRARY_VERSION).toBe(pkg.version);
});
