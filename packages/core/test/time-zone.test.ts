import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assertTimeZone, compactStamp, isoWithOffset, timeFromSetId, zonedParts } from '../src/util/time-zone.js';

/** What Intl says, the way the zoned path reads it. */
function intlParts(date: Date, timeZone: string): Record<string, string> {
  const f = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
  return Object.fromEntries(f.formatToParts(date).filter((p) => p.type !== 'literal').map((p) => [p.type, p.value]));
}

describe('time zones', () => {
  it('UTC parts, read from the Date without Intl, are what Intl gives for UTC and Etc/UTC', () => {
    fc.assert(
      fc.property(fc.date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('2200-12-31T23:59:59Z'), noInvalidDate: true }), (date) => {
        for (const zone of ['UTC', 'Etc/UTC']) {
          const { offsetMinutes, ...parts } = zonedParts(date, zone);
          expect(parts).toEqual(intlParts(date, 'UTC'));
          expect(offsetMinutes).toBe(0);
        }
        expect(isoWithOffset(date, 'UTC')).toBe(date.toISOString().replace('Z', '+00:00'));
        expect(timeFromSetId(`s_${compactStamp(date, 'UTC')}`, 'UTC')!.getTime()).toBe(Math.floor(date.getTime() / 1000) * 1000);
      }),
      { numRuns: 500 },
    );
  });

  it('other zones still go through Intl: offsets, and a bad name is refused', () => {
    expect(isoWithOffset(new Date('2026-11-26T17:00:00Z'), 'Asia/Seoul')).toBe('2026-11-27T02:00:00.000+09:00');
    expect(zonedParts(new Date('2026-07-01T12:00:00Z'), 'America/New_York').offsetMinutes).toBe(-240);
    expect(() => assertTimeZone('Mars/Olympus')).toThrow(/not a valid IANA time zone/);
    expect(() => assertTimeZone('UTC')).not.toThrow();
    expect(() => zonedParts(new Date(NaN), 'UTC')).toThrow(RangeError);
  });

  it('a UTC engine and its first backup stamp create no Intl.DateTimeFormat', () => {
    // In a fresh process, so nothing else has loaded ICU's zone data first.
    const module = fileURLToPath(new URL('../src/util/time-zone.ts', import.meta.url));
    const script = `
      let made = 0;
      const Real = Intl.DateTimeFormat;
      Intl.DateTimeFormat = function (...a) { made++; return new Real(...a); };
      const tz = await import(${JSON.stringify(module)});
      tz.assertTimeZone('UTC');
      tz.compactStamp(new Date(), 'UTC');
      tz.isoWithOffset(new Date(), 'UTC');
      const before = made;
      tz.isoWithOffset(new Date(), 'Asia/Seoul');
      console.log(JSON.stringify({ before, after: made }));`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout.trim())).toEqual({ before: 0, after: 1 });
  });
});
