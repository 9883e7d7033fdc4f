import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  ConfigError,
  createAdaptersFromEnv,
  cronProblem,
  defineAdapter,
  ENGINE_DEFAULTS,
  envIssue,
  envUrl,
  loadEnv,
  validateCron,
  type BackupSource,
  type EnvIssue,
} from '../src/index.js';

// A made-up source: nothing in core knows it, yet loadEnv reads, checks and masks its variables.
const widgetSource = defineAdapter({
  kind: 'source',
  name: 'widget',
  title: 'Widget source',
  enabledBy: 'WIDGET_URL',
  prefix: 'WIDGET_',
  env: {
    WIDGET_URL: { schema: envUrl(['widget:'], 'widget://user:pass@host'), url: true, doc: 'where the widgets are' },
    WIDGET_TOKEN: { schema: z.string().min(4, { message: 'expected at least 4 characters' }), secret: true, doc: 'token' },
    WIDGET_PHRASE: { schema: z.string(), untrimmed: true, secret: true, doc: 'phrase' },
    WIDGET_SIZE: {
      schema: z.string().transform((s, ctx) => (/^\d+$/.test(s) ? Number(s) : envIssue(ctx, 'expected digits'))),
      doc: 'size',
    },
  },
  configure({ values, isSet, problem }) {
    if (isSet('WIDGET_PHRASE') && !isSet('WIDGET_TOKEN')) problem('WIDGET_PHRASE', 'needs WIDGET_TOKEN');
    return values.WIDGET_URL ? { url: values.WIDGET_URL, size: values.WIDGET_SIZE ?? 1, phrase: values.WIDGET_PHRASE } : undefined;
  },
  create: (config) => ({ name: 'widget', config }) as unknown as BackupSource,
});

function issues(env: Record<string, string>): EnvIssue[] {
  try {
    loadEnv([widgetSource], env);
  } catch (error) {
    if (error instanceof ConfigError) return (error.details as { issues: EnvIssue[] }).issues;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('loadEnv with a descriptor core does not know', () => {
  it('reads, trims and defaults; the engine settings come from ENGINE_DEFAULTS', () => {
    const loaded = loadEnv([widgetSource], { WIDGET_URL: '  widget://u:s3cret@h  ', WIDGET_PHRASE: ' two words ', WIDGET_TOKEN: 'tok-1234' });
    expect(loaded.configOf(widgetSource)).toEqual({ url: 'widget://u:s3cret@h', size: 1, phrase: ' two words ' });
    expect(loaded.engine.components).toEqual(['widget']);
    expect(loaded.engine.schedules).toEqual(ENGINE_DEFAULTS.schedules);
    expect(loaded.engine.setPrefix).toBe(ENGINE_DEFAULTS.setPrefix);
    expect(loaded.adapters.map((a) => a.descriptor.name)).toEqual(['widget']);
    expect(loaded.secrets).toEqual(expect.arrayContaining(['s3cret', 'tok-1234', ' two words ']));
  });

  it('BACKUP_TIMEZONE takes the canonical IANA name, UTC without Intl, and refuses an unknown zone', () => {
    const zone = (value: string) => loadEnv([widgetSource], { BACKUP_TIMEZONE: value }).engine.timeZone;
    expect(zone('UTC')).toBe('UTC');
    expect(zone('Etc/UTC')).toBe('UTC');
    expect(zone('asia/seoul')).toBe('Asia/Seoul');
    expect(() => zone('Mars/Olympus')).toThrow(/BACKUP_TIMEZONE.*IANA time zone/s);
  });

  it('reports every invalid variable at once, hiding secrets and URL passwords', () => {
    let error: ConfigError | undefined;
    try {
      loadEnv([widgetSource], { WIDGET_URL: 'http://u:pw-secret@h', WIDGET_TOKEN: 'ab', WIDGET_SIZE: 'big', BACKUP_CONCURRENCY: '99' });
    } catch (e) {
      error = e as ConfigError;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const list = (error!.details as { issues: EnvIssue[] }).issues;
    expect(list.map((i) => i.variable).sort()).toEqual(['BACKUP_CONCURRENCY', 'WIDGET_SIZE', 'WIDGET_TOKEN', 'WIDGET_URL']);
    expect(error!.message).toContain('WIDGET_URL="http://u:***@h/"');
    expect(error!.message).toContain('WIDGET_TOKEN (value hidden)');
    expect(error!.message).not.toContain('pw-secret');
    expect(list.find((i) => i.variable === 'WIDGET_TOKEN')!.value).toBeUndefined();
  });

  it('runs cross-variable rules and names BACKUP_COMPONENTS problems with the source variable', () => {
    expect(issues({ WIDGET_PHRASE: 'x' }).map((i) => `${i.variable}: ${i.message}`)).toEqual(['WIDGET_PHRASE: needs WIDGET_TOKEN']);
    expect(issues({ BACKUP_COMPONENTS: 'widget' })[0]!.message).toBe('includes widget, but WIDGET_URL is not set');
    expect(issues({ BACKUP_COMPONENTS: 'gadget' })[0]!.message).toMatch(/unknown value "gadget"; expected a comma list of widget/);
  });

  it('warns about unused settings and typos under known prefixes only', () => {
    const { warnings } = loadEnv([widgetSource], { WIDGET_SIZE: '3', WIDGET_TOKN: 'x', BACKUP_TIMEZON: 'UTC', OTHER_TOKEN: 'y' });
    expect(warnings).toEqual([
      'No component to back up: set WIDGET_URL.',
      'WIDGET_SIZE is set but WIDGET_URL is not; it is ignored.',
      'Unknown variable WIDGET_TOKN; did you mean WIDGET_TOKEN?',
      'Unknown variable BACKUP_TIMEZON; did you mean BACKUP_TIMEZONE?',
    ]);
  });

  it('refuses two descriptors declaring the same variable', () => {
    const twin = { ...widgetSource, name: 'twin' };
    expect(() => loadEnv([widgetSource, twin], {})).toThrow(/WIDGET_URL is declared by both "widget" and "twin"/);
  });

  it('creates the chosen adapters with their config and the engine settings', async () => {
    const created = await createAdaptersFromEnv(loadEnv([widgetSource], { WIDGET_URL: 'widget://h', WIDGET_SIZE: '7' }));
    expect(created.sources).toHaveLength(1);
    expect((created.sources[0] as unknown as { config: unknown }).config).toEqual({ url: 'widget://h', size: 7, phrase: undefined });
  });
});

describe('one cron check for the scheduler and .env', () => {
  it('accepts the documented 6-field form in both, and rejects the same bad ones in both', () => {
    expect(cronProblem('0 0 2 * * *')).toBeUndefined();
    expect(() => validateCron('0 0 2 * * *', 'daily').stop()).not.toThrow();
    expect(loadEnv([], { BACKUP_DAILY_SCHEDULE: '0 0 2 * * *' }).engine.schedules.daily).toBe('0 0 2 * * *');
    for (const bad of ['0 25 * * *', '0 0 30 2 *', '1 2 3 4 5 6 7']) {
      expect(cronProblem(bad), bad).toBeTruthy();
      expect(() => validateCron(bad, 'daily'), bad).toThrow(/daily/);
      expect(() => loadEnv([], { BACKUP_DAILY_SCHEDULE: bad }), bad).toThrow(ConfigError);
    }
  });
});
