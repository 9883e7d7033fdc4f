import type { DrillCheck } from './drill-types.js';

export interface JoinFigures {
  left: number;
  right: number;
  matched: number;
  /** Ids on the left with no partner on the right. */
  missing: number;
  /** Ids on the right with no partner on the left. */
  orphaned: number;
}

/**
 * Joins two id streams. The right side is held in memory (one entry per id: for Scholaria, one
 * per Qdrant point), the left side streams through, so memory grows with the right side only.
 */
export async function joinIds(
  left: AsyncIterable<string>,
  right: AsyncIterable<string>,
  options: { maxMismatches: number; leftLabel: string; rightLabel: string; signal?: AbortSignal },
): Promise<{ figures: JoinFigures; mismatches: string[] }> {
  const seen = new Map<string, boolean>();
  let rightCount = 0;
  for await (const id of right) {
    rightCount++;
    seen.set(id, false);
    if (rightCount % 10_000 === 0) options.signal?.throwIfAborted();
  }
  const mismatches: string[] = [];
  let leftCount = 0;
  let matched = 0;
  let missing = 0;
  for await (const id of left) {
    leftCount++;
    if (leftCount % 10_000 === 0) options.signal?.throwIfAborted();
    if (seen.has(id)) {
      if (!seen.get(id)) matched++;
      seen.set(id, true);
    } else {
      missing++;
      if (mismatches.length < options.maxMismatches) mismatches.push(`${options.leftLabel} ${id} has no ${options.rightLabel}`);
    }
  }
  let orphaned = 0;
  const orphanLines: string[] = [];
  for (const [id, hit] of seen) {
    if (hit) continue;
    orphaned++;
    if (orphanLines.length < options.maxMismatches) orphanLines.push(`${options.rightLabel} ${id} is orphaned (no ${options.leftLabel})`);
  }
  // Both kinds appear among the first few when both exist.
  const head = mismatches.slice(0, orphanLines.length > 0 ? Math.ceil(options.maxMismatches / 2) : options.maxMismatches);
  const listed = [...head, ...orphanLines].slice(0, options.maxMismatches);
  return { figures: { left: leftCount, right: rightCount, matched, missing, orphaned }, mismatches: listed };
}

export function joinCheck(name: string, leftLabel: string, rightLabel: string, r: { figures: JoinFigures; mismatches: string[] }): DrillCheck {
  const f = r.figures;
  const ok = f.missing === 0 && f.orphaned === 0;
  return {
    name: 'cross-store',
    status: ok ? 'pass' : 'fail',
    message: ok
      ? `${name}: all ${f.left} ${leftLabel} ids have their ${rightLabel} and no ${rightLabel} is orphaned (${f.right})`
      : `${name}: ${f.missing} of ${f.left} ${leftLabel} ids have no ${rightLabel}; ${f.orphaned} of ${f.right} ${rightLabel}s are orphaned`,
    figures: { ...f },
    ...(ok ? {} : { mismatches: r.mismatches }),
  };
}
