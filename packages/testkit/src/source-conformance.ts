import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackupEngine, createGzipCodec, type BackupEngine, type BackupSource, type Codec } from '@scholaria/backup-core';
import { createMemoryStorage } from './memory-storage.js';

export interface SourceFixture {
  source: BackupSource;
  /** A stable fingerprint of the target's data (rows, keys, points with checksums); compared with toEqual. */
  fingerprint(): Promise<unknown>;
  /** Damages the target's data (drop, flush, delete) so that a restore has something to do. */
  damage(): Promise<void>;
  /** Strings that must never appear in manifests, errors or plans (passwords, API keys). */
  secrets?: string[];
  /** Restore-time options for this component (engine.restore componentOptions). */
  restoreOptions?: Record<string, unknown>;
  teardown(): Promise<void>;
}

export interface SourceConformanceOptions {
  name: string;
  setup: () => Promise<SourceFixture>;
  /** Codecs for the engine; default gzip, so decoding on restore is exercised. */
  codecs?: Codec[];
  skip?: { abort?: boolean; verify?: boolean };
}

/**
 * The behaviour every BackupSource must show through the engine: a backup that restores the
 * exact data after damage, a dry run that writes nothing, metadata without secrets, an
 * aborted run that records no set.
 */
export function sourceConformance(options: SourceConformanceOptions): void {
  describe(`${options.name} (source conformance)`, () => {
    let fixture: SourceFixture;
    let engine: BackupEngine;
    let original: unknown;
    const storage = createMemoryStorage(options.name);

    beforeAll(async () => {
      fixture = await options.setup();
      engine = createBackupEngine({
        sources: [fixture.source],
        storage,
        codecs: options.codecs ?? [createGzipCodec({ level: 1 })],
        secrets: fixture.secrets ?? [],
      });
      original = await fixture.fingerprint();
    });
    afterAll(async () => {
      await fixture?.teardown();
    });

    it('declares specVersion v1 and a component name', () => {
      expect(fixture.source.specVersion).toBe('v1');
      expect(fixture.source.name).toMatch(/^[a-z][a-z0-9-]*$/);
    });

    it('check() finds the target reachable', async () => {
      const res = await fixture.source.check();
      expect(res.problems ?? []).toEqual([]);
      expect(res.ok).toBe(true);
    });

    it('backs up into a complete set with checksummed artifacts', async () => {
      const result = await engine.backup({ tier: 'daily' });
      expect(result.components.map((c) => c.error?.message ?? 'ok')).toEqual(['ok']);
      expect(result.status).toBe('complete');
      const component = result.manifest!.components[0]!;
      expect(component.artifacts.length).toBeGreaterThan(0);
      for (const a of component.artifacts) expect(a.sha256).toMatch(/^[0-9a-f]{64}$/);
    });

    it('records no secret in the manifest', async () => {
      const manifest = JSON.stringify(await engine.readManifest('latest'));
      for (const secret of fixture.secrets ?? []) expect(manifest).not.toContain(secret);
    });

    it('dry-run restore plans without writing to the target', async () => {
      await fixture.damage();
      const damaged = await fixture.fingerprint();
      expect(damaged).not.toEqual(original);
      const res = await engine.restore({
        ref: 'latest',
        dryRun: true,
        ...(fixture.restoreOptions ? { componentOptions: { [fixture.source.name]: fixture.restoreOptions } } : {}),
      });
      expect(res.components.map((c) => c.error?.message ?? c.status)).toEqual(['planned']);
      expect(res.components[0]!.plan.length).toBeGreaterThan(0);
      expect(await fixture.fingerprint()).toEqual(damaged);
      for (const secret of fixture.secrets ?? []) expect(JSON.stringify(res.components)).not.toContain(secret);
    });

    it('restore brings back exactly the data that was backed up', async () => {
      const res = await engine.restore({
        ref: 'latest',
        ...(fixture.restoreOptions ? { componentOptions: { [fixture.source.name]: fixture.restoreOptions } } : {}),
      });
      expect(res.components.map((c) => c.error?.message ?? c.status)).toEqual(['ok']);
      expect(await fixture.fingerprint()).toEqual(original);
    });

    it.runIf(!options.skip?.verify)('verify() agrees with the manifest after a restore', async () => {
      if (!fixture.source.verify) return;
      const manifest = await engine.readManifest('latest');
      const res = await fixture.source.verify({ component: manifest.components[0]!, signal: new AbortController().signal, logger: console as never });
      expect(res.mismatches).toEqual([]);
      expect(res.ok).toBe(true);
    });

    it.runIf(!options.skip?.abort)('an aborted backup records no set', async () => {
      const before = (await engine.list({ includeIncomplete: true })).length;
      const controller = new AbortController();
      controller.abort(new Error('test abort'));
      const result = await engine.backup({ tier: 'daily', signal: controller.signal });
      expect(result.status).toBe('failed');
      expect(result.manifest).toBeUndefined();
      const after = await engine.list();
      expect(after.length).toBe(before);
    });
  });
}
