import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError, type ScholariaBackupConfig } from '@scholaria/backup-core';

/** Looked for in the working directory, in this order, when --config is not given. */
export const CONFIG_FILE_NAMES = [
  'backup.config.ts',
  'backup.config.mts',
  'backup.config.mjs',
  'backup.config.js',
  'scholaria-backup.config.ts',
  'scholaria-backup.config.mts',
  'scholaria-backup.config.mjs',
  'scholaria-backup.config.js',
] as const;

const TS_EXTENSIONS = new Set(['.ts', '.mts', '.cts']);

/** Whether a `.ts`/`.js` file at `path` is an ES module by its nearest package.json. */
function inModuleScope(path: string): boolean {
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        return (JSON.parse(readFileSync(pkg, 'utf8')) as { type?: string }).type === 'module';
      } catch {
        return false;
      }
    }
    if (dirname(dir) === dir) return false;
  }
}

export function findConfigFile(cwd: string, explicit?: string): string | undefined {
  if (explicit !== undefined) {
    const path = isAbsolute(explicit) ? explicit : resolve(cwd, explicit);
    if (!existsSync(path) || !statSync(path).isFile()) {
      throw new ConfigError(`config file ${path} does not exist`, [], {
        hint: 'Pass the path of a backup.config.ts/.mjs file to --config, or leave --config out to configure from the environment.',
      });
    }
    return path;
  }
  for (const name of CONFIG_FILE_NAMES) {
    const path = resolve(cwd, name);
    if (existsSync(path) && statSync(path).isFile()) return path;
  }
  return undefined;
}

/**
 * Imports a config file: `.ts` through tsx (no build step), `.mjs`/`.js` natively. The default
 * export is `defineConfig({...})`, or a (possibly async) function returning it.
 */
export async function importConfigFile(path: string, env: Record<string, string | undefined>): Promise<ScholariaBackupConfig> {
  const url = pathToFileURL(path).href;
  let mod: Record<string, unknown>;
  try {
    if (TS_EXTENSIONS.has(extname(path))) {
      const { tsImport } = await import('tsx/esm/api');
      mod = (await tsImport(url, import.meta.url)) as Record<string, unknown>;
    } else {
      mod = (await import(url)) as Record<string, unknown>;
    }
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    const be = error as { code?: string; message?: string; issues?: string[] };
    // A factory inside the file refused its options: keep its list of problems.
    if (be?.code === 'CONFIG_INVALID') {
      throw new ConfigError(`config file ${path}: ${be.message ?? 'invalid'}`, [], { cause: error });
    }
    const ext = extname(path);
    // The @scholaria packages are ES modules only; a .ts/.js file outside a "type": "module"
    // package is loaded as CommonJS and cannot import them.
    const commonJs = (ext === '.ts' || ext === '.js') && !inModuleScope(path);
    throw new ConfigError(`cannot load config file ${path}: ${(error as Error)?.message ?? String(error)}`, [], {
      cause: error,
      hint: commonJs
        ? `The file is loaded as CommonJS (its folder has no package.json with "type": "module"); rename it to backup.config.${ext === '.ts' ? 'mts' : 'mjs'} or add "type": "module" to the package.json.`
        : 'Fix the error in the file (run it with `npx tsx` to see it in context); its imports resolve from its own folder.',
    });
  }
  let value: unknown = mod.default;
  // A CommonJS-transpiled file nests the default export once more.
  if (value && typeof value === 'object' && 'default' in value && Object.keys(value).length === 1) {
    value = (value as { default: unknown }).default;
  }
  if (typeof value === 'function') value = await (value as (ctx: { env: typeof env }) => unknown)({ env });
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(`config file ${path} has no default export of a configuration object`, [], {
      hint: 'End the file with `export default defineConfig({ sources: [...], storage: ... })`.',
    });
  }
  return value as ScholariaBackupConfig;
}
