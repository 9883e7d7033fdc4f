import { describe, expect, it } from 'vitest';
import {
  escapeHtml,
  formatBytes,
  formatDuration,
  renderHtml,
  renderSubject,
  renderText,
  resolveTemplates,
  type BackupEvent,
} from '@scholaria/backup-core';

const failure: BackupEvent = {
  type: 'backup.failed',
  outcome: 'failure',
  time: '2026-11-26T02:00:41.000Z',
  host: 'db-1',
  setId: 'scholaria_backup_20261126_020000',
  tier: 'daily',
  durationMs: 83_000,
  bytes: 1_288_490_189,
  storages: ['fs:/backup', 's3:scholaria'],
  components: [
    { name: 'postgres', status: 'ok', bytes: 1_288_490_189, durationMs: 80_000 },
    {
      name: 'redis',
      status: 'failed',
      durationMs: 3_050,
      error: { code: 'AUTH_FAILED', message: 'WRONGPASS invalid username-password pair' },
    },
    { name: 'qdrant', status: 'skipped' },
  ],
  error: { code: 'SOURCE_FAILED', message: 'redis: backup failed', component: 'redis' },
  details: ['retention: kept 7 daily sets'],
};

describe('formatBytes / formatDuration', () => {
  it.each([
    [0, '0 B'],
    [512, '512 B'],
    [1536, '1.5 KiB'],
    [851_443_712, '812.0 MiB'],
    [1_288_490_189, '1.2 GiB'],
    [5 * 1024 ** 4, '5.0 TiB'],
    [undefined, 'unknown'],
    [-1, 'unknown'],
    [Number.NaN, 'unknown'],
  ])('formatBytes(%s) = %s', (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });

  it.each([
    [0, '0 ms'],
    [850, '850 ms'],
    [3_250, '3.2 s'],
    [59_999, '59.9 s'],
    [65_000, '1m 05s'],
    [7_384_000, '2h 03m 04s'],
    [93_784_000, '1d 02h 03m'],
    [undefined, 'unknown'],
  ])('formatDuration(%s) = %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});

describe('renderSubject / renderText', () => {
  it('says outcome, set, tier and host in the subject', () => {
    expect(renderSubject(failure)).toBe('[FAILED] Backup failed: scholaria_backup_20261126_020000 (daily) on db-1');
    expect(renderSubject({ type: 'health.failed', outcome: 'failure', time: 't', host: 'h' })).toBe('[FAILED] Health check failed on h');
    expect(renderSubject({ ...failure, type: 'backup.started', outcome: 'start' })).toMatch(/^\[STARTED\] Backup started/);
  });

  it('reports every fact, component and error with its next step', () => {
    const text = renderText(failure);
    expect(text.split('\n').slice(0, 2)).toEqual(['Backup failed', '1 of 3 components ok']);
    expect(text).toMatch(/^Outcome:\s+FAILED$/m);
    expect(text).toMatch(/^Set:\s+scholaria_backup_20261126_020000$/m);
    expect(text).toMatch(/^Tier:\s+daily$/m);
    expect(text).toMatch(/^Host:\s+db-1$/m);
    expect(text).toMatch(/^Duration:\s+1m 23s$/m);
    expect(text).toMatch(/^Size:\s+1\.2 GiB$/m);
    expect(text).toMatch(/^Storages:\s+fs:\/backup, s3:scholaria$/m);
    expect(text).toMatch(/^ {2}postgres\s+ok\s+1\.2 GiB\s+1m 20s$/m);
    expect(text).toMatch(/^ {2}redis\s+FAILED\s+3\.0 s$/m);
    expect(text).toMatch(/^ {2}qdrant\s+skipped$/m);
    expect(text).toContain('      Error [AUTH_FAILED]: WRONGPASS invalid username-password pair');
    // No hint on the error: the default next step for its code.
    expect(text).toContain('      Next step: Check the user name and password (or key) configured for this component.');
    expect(text).toContain('Error [SOURCE_FAILED]: redis: backup failed');
    expect(text).toContain('Next step: Check the backup logs on this host');
    expect(text).toContain('  - retention: kept 7 daily sets');
  });

  it('shows an error once when it is also a component error', () => {
    const shared = { code: 'CONNECTION_FAILED', message: 'redis: connect ECONNREFUSED', hint: 'Start Redis.' };
    const text = renderText({ ...failure, error: shared, components: [{ name: 'redis', status: 'failed', error: shared }] });
    expect(text.match(/Error \[CONNECTION_FAILED\]/g)).toHaveLength(1);
    expect(text.match(/Next step: Start Redis\./g)).toHaveLength(1);
    expect(renderHtml({ ...failure, error: shared, components: [{ name: 'redis', status: 'failed', error: shared }] }).match(/Start Redis/g)).toHaveLength(1);
  });

  it('prefixes the component when the message lacks it', () => {
    const text = renderText({ ...failure, error: { code: 'X', message: 'it broke', component: 'qdrant', hint: 'Do this.' } });
    expect(text).toContain('Error [X]: qdrant: it broke\nNext step: Do this.');
  });
});

describe('renderHtml', () => {
  it('is a complete document with every value escaped', () => {
    const html = renderHtml({
      ...failure,
      host: 'db<1>',
      error: { code: 'SOURCE_FAILED', message: '<img src=x onerror="alert(1)"> & \'q\'', hint: 'use <b>' },
    });
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).toContain('</html>');
    expect(html).not.toContain('<img');
    expect(html).not.toContain('<b>');
    expect(html).toContain('&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; &#39;q&#39;');
    expect(html).toContain('db&lt;1&gt;');
    expect(html).toContain('#e01e5a');
    expect(html).toContain('1.2 GiB');
  });

  it('escapeHtml handles all five characters', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });
});

describe('resolveTemplates', () => {
  it('replaces only the given templates', () => {
    const t = resolveTemplates({ subject: (e) => `custom ${e.type}` });
    expect(t.subject(failure)).toBe('custom backup.failed');
    expect(t.text(failure)).toBe(renderText(failure));
    expect(t.html(failure)).toBe(renderHtml(failure));
  });
});
