/**
 * The worked retention example of docs/concepts.md, computed with the library's own planner.
 * `docs-retention.test.ts` checks that the doc shows exactly this output; to refresh the doc after
 * a change, run `node --import tsx examples/scholaria/test/retention-example.ts` from the
 * repository root and paste the output between the markers.
 */
import { planTierRetention, retentionFromDays, type TierRetentionSet } from '@scholaria/backup-core';

/** A set id as the engine makes it, from a Seoul wall-clock time. */
function kst(year: number, month: number, day: number, hour: number): { id: string; time: Date } {
  const time = new Date(Date.UTC(year, month - 1, day, hour - 9));
  const p = (n: number) => String(n).padStart(2, '0');
  return { id: `scholaria_backup_${year}${p(month)}${p(day)}_${p(hour)}0000`, time };
}

/** What the strategy document's schedule leaves on /backup by Thursday 2026-11-26 10:00 (Seoul). */
export function exampleSets(): TierRetentionSet[] {
  const sets: TierRetentionSet[] = [];
  for (let day = 16; day <= 26; day++) {
    // The 25th's daily backup was partial (Redis was down during the run).
    sets.push({ ...kst(2026, 11, day, 2), tier: 'daily', status: day === 25 ? 'partial' : 'complete' });
  }
  for (const [month, day] of [
    [10, 4],
    [10, 11],
    [10, 18],
    [10, 25],
    [11, 1],
    [11, 8],
    [11, 15],
    [11, 22],
  ] as const) {
    sets.push({ ...kst(2026, month, day, 3), tier: 'weekly', status: 'complete' });
  }
  for (let i = 0; i < 14; i++) {
    const month = ((9 + i) % 12) + 1;
    const year = 2025 + Math.floor((9 + i) / 12);
    sets.push({ ...kst(year, month, 1, 4), tier: 'monthly', status: 'complete' });
  }
  return sets;
}

export const EXAMPLE_NOW = new Date('2026-11-26T01:00:00Z');

export function retentionExampleMarkdown(): string {
  const retention = retentionFromDays({ daily: 7, weekly: 30, monthly: 365 });
  const plan = planTierRetention(exampleSets(), retention, { now: EXAMPLE_NOW });
  const rows = [...plan.keep.map((d) => ({ ...d, keep: true })), ...plan.remove.map((d) => ({ ...d, keep: false }))];
  const order = ['daily', 'weekly', 'monthly'];
  rows.sort((a, b) => order.indexOf(a.tier) - order.indexOf(b.tier) || (a.id < b.id ? 1 : -1));
  const lines = [
    `Policy: \`${JSON.stringify(retention.tiers)}\` (from \`retentionFromDays({ daily: 7, weekly: 30, monthly: 365 })\`).`,
    '',
    '| set | tier | status | decision | why |',
    '| --- | --- | --- | --- | --- |',
  ];
  for (const r of rows) {
    lines.push(`| \`${r.id}\` | ${r.tier} | ${r.status} | ${r.keep ? 'keep' : '**remove**'} | ${r.reasons.join('; ')} |`);
  }
  lines.push('', `Kept: ${plan.keep.length}, removed: ${plan.remove.length}.`);
  return lines.join('\n');
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  console.log(retentionExampleMarkdown());
}
