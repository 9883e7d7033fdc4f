import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { planRetention } from '../src/retention/plan-retention.js';
import type { RetentionPolicy } from '../src/retention/types.js';
import { BackupError } from '../src/errors/backup-error.js';

// The repository is checked out with `shared/` beside it (../shared from the repo root).
const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const vectorsDir = join(repoRoot, '..', 'shared', 'conformance', 'restic-retention');

interface VectorDuration {
  spec: string;
  canonical: string;
}
interface Vector {
  name: string;
  policy: Record<string, number | VectorDuration | string[][]>;
  now: string | null;
  withinAnchor: string;
  snapshots: { id: string; time: string; tags: string[] }[];
  expectedKeep: string[];
  expectedRemove: string[];
  expectedReasons: { id: string; matches: string[]; counters: Record<string, number> }[];
}

const index = JSON.parse(readFileSync(join(vectorsDir, 'index.json'), 'utf8')) as {
  caseCount: number;
  cases: { file: string }[];
};

function toPolicy(raw: Vector['policy']): RetentionPolicy {
  const policy: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    policy[key] = typeof value === 'object' && value !== null && !Array.isArray(value) ? value.spec : value;
  }
  return policy as RetentionPolicy;
}

describe('restic forget conformance vectors', () => {
  it('has all 40 cases on disk', () => {
    expect(index.caseCount).toBe(40);
    expect(index.cases).toHaveLength(40);
    expect(readdirSync(vectorsDir).filter((f) => /^policy_keep_snapshots_\d+\.json$/.test(f))).toHaveLength(40);
  });

  for (const { file } of index.cases) {
    const vector = JSON.parse(readFileSync(join(vectorsDir, file), 'utf8')) as Vector;
    const policy = toPolicy(vector.policy);
    const now = vector.now ? new Date(vector.now) : new Date();
    const isEmpty = Object.keys(policy).length === 0;

    it(`${vector.name}: ${JSON.stringify(policy)}`, () => {
      if (isEmpty) {
        // restic's CLI refuses an empty policy and so does planRetention; the library semantics
        // (remove everything) are still reachable on request and must match the vector.
        let error: unknown;
        try {
          planRetention(vector.snapshots, policy, { now });
        } catch (e) {
          error = e;
        }
        expect(BackupError.isInstance(error) && error.code).toBe('RETENTION_INVALID');
      }
      const plan = planRetention(vector.snapshots, policy, { now, allowEmptyPolicy: isEmpty });
      expect(plan.keep.map((k) => k.id)).toEqual(vector.expectedKeep);
      expect(plan.remove.map((r) => r.id)).toEqual(vector.expectedRemove);
      expect(plan.keep.map((k) => ({ id: k.id, matches: k.reasons }))).toEqual(
        vector.expectedReasons.map((r) => ({ id: r.id, matches: r.matches })),
      );
      expect(plan.keep.map((k) => k.counters)).toEqual(vector.expectedReasons.map((r) => r.counters));
    });
  }
});
