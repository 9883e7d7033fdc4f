import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENV_VARIABLES, envDocsTable } from '@scholaria/backup-cli';
import { envTableOf } from '@scholaria/backup-core';
import { ageCodecOptionsSchema } from '@scholaria/backup-age';
import { emailNotifierOptionsSchema } from '@scholaria/backup-email';
import { fsStorageOptionsSchema } from '@scholaria/backup-fs';
import { postgresOptionsSchema } from '@scholaria/backup-postgres';
import { qdrantOptionsSchema } from '@scholaria/backup-qdrant';
import { redisSourceOptionsSchema } from '@scholaria/backup-redis';
import { s3StorageOptionsSchema } from '@scholaria/backup-s3';
import { slackNotifierOptionsSchema } from '@scholaria/backup-slack';
import { discordNotifierOptionsSchema, heartbeatNotifierOptionsSchema, webhookNotifierOptionsSchema } from '@scholaria/backup-webhook';
import { markdownFiles } from './docs-commands.js';
import { repoRoot } from './helpers.js';
import { retentionExampleMarkdown } from './retention-example.js';

const read = (path: string) => readFileSync(join(repoRoot, path), 'utf8');

/** The rows of the markdown tables of a page whose first cell is `` `name` ``: name -> row. */
function optionRows(page: string): Map<string, string> {
  const rows = new Map<string, string>();
  for (const line of read(page).split('\n')) {
    const m = /^\|\s*`([\w.]+)`\s*\|/.exec(line);
    if (m) rows.set(m[1]!, line);
  }
  return rows;
}

/** An exported zod object schema; only its shape is read. */
type ObjectSchema = unknown;

function schemaDefaults(schema: ObjectSchema): Map<string, unknown> {
  const shape = (schema as unknown as { shape: Record<string, { _zod: { def: { type: string; defaultValue?: unknown } } }> }).shape;
  const out = new Map<string, unknown>();
  for (const [key, field] of Object.entries(shape)) {
    if (field._zod.def.type === 'default') out.set(key, field._zod.def.defaultValue);
  }
  return out;
}

/** How a default may be written in a table cell. */
function spellings(value: unknown): string[] {
  if (typeof value === 'number') return [String(value), `0o${value.toString(8)}`];
  if (typeof value === 'string') return [`'${value}'`, `\`${value}\``];
  if (typeof value === 'boolean') return [String(value)];
  if (Array.isArray(value)) return [value.length === 0 ? '[]' : JSON.stringify(value).replace(/"/g, "'").replace(/,/g, ', ')];
  return [];
}

const ADAPTER_PAGES: [string, ObjectSchema][] = [
  ['docs/adapters/postgres.md', postgresOptionsSchema],
  ['docs/adapters/redis.md', redisSourceOptionsSchema],
  ['docs/adapters/qdrant.md', qdrantOptionsSchema],
  ['docs/adapters/fs.md', fsStorageOptionsSchema],
  ['docs/adapters/s3.md', s3StorageOptionsSchema],
  ['docs/adapters/age.md', ageCodecOptionsSchema],
  ['docs/adapters/email.md', emailNotifierOptionsSchema],
  ['docs/adapters/slack.md', slackNotifierOptionsSchema],
];

describe('docs stay true to the code', () => {
  it('concepts.md shows exactly what planTierRetention decides for the worked example', () => {
    const doc = read('docs/concepts.md');
    const shown = /<!-- retention-example:start -->\n([\s\S]*?)\n<!-- retention-example:end -->/.exec(doc)?.[1];
    expect(shown).toBe(retentionExampleMarkdown());
  });

  it('configuration.md lists every environment variable loadEnvConfig reads', () => {
    const rows = optionRows('docs/configuration.md');
    expect(ENV_VARIABLES.filter((v) => !rows.has(v))).toEqual([]);
  });

  it.each([
    ['docs/configuration.md', 'en'],
    ['docs/ko/configuration.md', 'ko'],
  ] as const)('%s holds the env-variable tables generated from the descriptors (pnpm docs:env)', (file, lang) => {
    const shown = envTableOf(read(file));
    expect(shown, `${file} has no env-table markers`).toBeDefined();
    expect(shown, `${file} differs from the descriptors; run pnpm docs:env`).toBe(envDocsTable(lang));
  });

  it.each(ADAPTER_PAGES)('%s lists every option of the schema with its default', (page, schema) => {
    const rows = optionRows(page);
    const keys = Object.keys((schema as unknown as { shape: object }).shape);
    expect(keys.filter((k) => !rows.has(k))).toEqual([]);
    const wrong: string[] = [];
    for (const [key, value] of schemaDefaults(schema)) {
      const cells = rows.get(key)!.split(/(?<!\\)\|/).map((c) => c.trim());
      const defaultCell = cells[3] ?? '';
      const forms = spellings(value);
      if (forms.length > 0 && !forms.some((f) => defaultCell.includes(f))) wrong.push(`${key}: schema default ${JSON.stringify(value)}, page says ${defaultCell}`);
    }
    expect(wrong).toEqual([]);
  });

  it('the webhook page lists every option of the Discord, webhook and heartbeat schemas', () => {
    const text = read('docs/adapters/webhook.md');
    const sections = text.split(/^`create(\w+)Notifier` \(/m);
    const tableOf = (name: string) => sections[sections.indexOf(name) + 1] ?? '';
    for (const [name, schema] of [
      ['Discord', discordNotifierOptionsSchema],
      ['Webhook', webhookNotifierOptionsSchema],
      ['Heartbeat', heartbeatNotifierOptionsSchema],
    ] as const) {
      const keys = Object.keys((schema as unknown as { shape: object }).shape);
      expect({ name, missing: keys.filter((k) => !tableOf(name).includes(`| \`${k}\` |`)) }).toEqual({ name, missing: [] });
    }
  });

  it('relative links in the docs and READMEs of this issue point at files that exist', () => {
    const others = new Set(['docs/cli.md', 'docs/encryption-in-transit.md', 'docs/benchmarks.md', 'docs/reliability.md']);
    const pages = markdownFiles(repoRoot)
      .map((f) => relative(repoRoot, f))
      .filter((f) => (f.startsWith('docs/') && !others.has(f)) || f === 'README.md' || f.startsWith('examples/'));
    const broken: string[] = [];
    for (const page of pages) {
      const text = read(page).replace(/```[\s\S]*?```/g, '');
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1]!;
        if (/^(https?:|mailto:|#)/.test(target)) continue;
        const path = join(repoRoot, dirname(page), decodeURIComponent(target.split('#')[0]!));
        if (!existsSync(path)) broken.push(`${page}: ${target}`);
      }
    }
    expect(broken).toEqual([]);
  });
});
