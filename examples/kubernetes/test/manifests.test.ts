import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { ENGINE_TIERS, envGroupsOf, loadEnv, type EnvVariables } from '@scholaria/backup-core';
import { envDescriptorsOf, SHIPPED_ADAPTERS } from '@scholaria/backup-cli';

/**
 * No Kubernetes cluster and no schema checker (kubeconform) can be installed where these tests
 * run, so the manifests are never applied here. What can be checked without one is checked:
 * every file parses, kinds and apiVersions are the stable ones, every reference (ConfigMap,
 * Secret, PVC, port name, kustomization resource) resolves, the commands and options exist in
 * the built CLI, every variable is one the CLI reads and the settings load without a problem.
 */
const root = fileURLToPath(new URL('..', import.meta.url));
const bin = fileURLToPath(new URL('../../../packages/cli/dist/bin.js', import.meta.url));

type Obj = Record<string, any>;
const API: Record<string, string> = {
  Deployment: 'apps/v1',
  Job: 'batch/v1',
  CronJob: 'batch/v1',
  ConfigMap: 'v1',
  Secret: 'v1',
  PersistentVolumeClaim: 'v1',
  Kustomization: 'kustomize.config.k8s.io/v1beta1',
};

function load(dir: string): { file: string; doc: Obj }[] {
  return readdirSync(join(root, dir))
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) =>
      parseAllDocuments(readFileSync(join(root, dir, f), 'utf8')).map((d) => {
        expect(d.errors, `${dir}/${f}`).toEqual([]);
        return { file: `${dir}/${f}`, doc: d.toJS() as Obj };
      }),
    );
}

const variants = { base: load('base'), s3: load('s3'), cronjobs: [...load('cronjobs'), ...load('base').filter((d) => d.doc.kind !== 'Deployment')] };
const all = [...variants.base, ...variants.s3, ...load('cronjobs')];

/** Every variable the CLI reads, plus the AWS SDK's own credentials variables. */
const known = new Set([
  ...envGroupsOf(envDescriptorsOf(SHIPPED_ADAPTERS)).flatMap((g) => Object.keys(g.env as EnvVariables)),
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
]);

function podSpec(doc: Obj): Obj {
  if (doc.kind === 'Deployment' || doc.kind === 'Job') return doc.spec.template.spec;
  if (doc.kind === 'CronJob') return doc.spec.jobTemplate.spec.template.spec;
  throw new Error(`${doc.kind} has no pod`);
}

const helpCache = new Map<string, string>();
/** `scholaria-backup <command...> --help` of the built CLI; fails when the command does not exist. */
function help(command: string[]): string {
  const k = command.join(' ');
  if (!helpCache.has(k)) {
    const r = spawnSync(process.execPath, [bin, ...command, '--help'], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
    expect(r.status, r.stderr).toBe(0);
    helpCache.set(k, r.stdout);
  }
  return helpCache.get(k)!;
}

describe('examples/kubernetes manifests (static checks; not applied: no cluster here)', () => {
  it('every document parses and has a stable kind, apiVersion and name', () => {
    expect(all.length).toBeGreaterThanOrEqual(12);
    for (const { file, doc } of all) {
      expect(API[doc.kind], `${file}: kind ${doc.kind}`).toBeDefined();
      expect(doc.apiVersion, file).toBe(API[doc.kind]);
      if (doc.kind !== 'Kustomization') expect(doc.metadata?.name, file).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    }
  });

  it('each kustomization lists files that exist', () => {
    for (const dir of ['base', 's3']) {
      const k = variants[dir as 'base' | 's3'].find((d) => d.doc.kind === 'Kustomization')!.doc;
      for (const r of k.resources as string[]) expect(existsSync(join(root, dir, r)), `${dir}/${r}`).toBe(true);
      const listed = new Set(k.resources as string[]);
      for (const f of readdirSync(join(root, dir)).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')) expect(listed.has(f), `${dir}/${f} not in kustomization`).toBe(true);
    }
  });

  for (const [name, docs] of Object.entries(variants)) {
    describe(`variant ${name}`, () => {
      const of = (kind: string) => docs.filter((d) => d.doc.kind === kind).map((d) => d.doc);
      const configMaps = new Map(of('ConfigMap').map((c) => [c.metadata.name as string, c.data as Record<string, string>]));
      const secrets = new Map(of('Secret').map((s) => [s.metadata.name as string, s.stringData as Record<string, string>]));
      const pvcs = new Map(of('PersistentVolumeClaim').map((p) => [p.metadata.name as string, p]));
      const workloads = docs.filter((d) => ['Deployment', 'Job', 'CronJob'].includes(d.doc.kind));

      it('references resolve and every variable is one the CLI reads; the settings load', () => {
        expect(workloads.length).toBeGreaterThan(0);
        for (const { file, doc } of workloads) {
          const spec = podSpec(doc);
          for (const c of spec.containers as Obj[]) {
            const env: Record<string, string> = {};
            for (const from of c.envFrom ?? []) {
              if (from.configMapRef) {
                expect(configMaps.has(from.configMapRef.name), `${file}: ConfigMap ${from.configMapRef.name}`).toBe(true);
                Object.assign(env, configMaps.get(from.configMapRef.name));
              }
              if (from.secretRef) {
                expect(secrets.has(from.secretRef.name), `${file}: Secret ${from.secretRef.name}`).toBe(true);
                Object.assign(env, secrets.get(from.secretRef.name));
              }
            }
            for (const e of c.env ?? []) env[e.name] = e.value;
            for (const v of Object.keys(env)) expect(known.has(v), `${file}: ${v} is not a variable scholaria-backup reads`).toBe(true);
            // The values are valid settings (what `scholaria-backup` would say at start).
            const loaded = loadEnv(envDescriptorsOf(SHIPPED_ADAPTERS), env);
            expect(loaded.warnings, file).toEqual([]);
            const mode = env.BACKUP_LEADER_ELECTION ?? 'off';
            if (mode !== 'off') {
              const adapter = SHIPPED_ADAPTERS.find((a) => a.name === mode);
              expect(adapter?.leaderElector, `${file}: BACKUP_LEADER_ELECTION=${mode}`).toBeTypeOf('function');
              expect(loaded.configOf(adapter!), `${file}: ${mode} is configured`).toBeDefined();
            }
            for (const m of c.volumeMounts ?? []) expect((spec.volumes as Obj[]).some((v) => v.name === m.name), `${file}: volume ${m.name}`).toBe(true);
            for (const v of spec.volumes as Obj[]) {
              if (v.persistentVolumeClaim) expect(pvcs.has(v.persistentVolumeClaim.claimName), `${file}: PVC ${v.persistentVolumeClaim.claimName}`).toBe(true);
            }
            expect(c.volumeMounts.find((m: Obj) => m.mountPath === env.BACKUP_DIR), `${file}: BACKUP_DIR is mounted`).toBeDefined();
          }
          expect(spec.securityContext).toMatchObject({ runAsUser: 1000, runAsNonRoot: true });
        }
      });

      it('every container runs a command and options the CLI has, from the example image', () => {
        for (const { file, doc } of workloads) {
          for (const c of podSpec(doc).containers as Obj[]) {
            expect(c.image, file).toMatch(/^[\w.-]+(:\d+)?\/scholaria-backup:[\w.-]+$/);
            expect(c.command, file).toEqual(['scholaria-backup']);
            const args = c.args as string[];
            const path = args[0] === 'scheduler' ? args.slice(0, 2) : args.slice(0, 1);
            const text = help(path);
            expect(text, file).toContain(`Usage: scholaria-backup ${path.join(' ')}`);
            for (const option of args.filter((a) => a.startsWith('--'))) expect(text, `${file}: ${option}`).toMatch(new RegExp(`(^|[ ,])${option}\\b`, 'm'));
            const tier = args.indexOf('--tier');
            if (tier !== -1) expect([...ENGINE_TIERS, 'manual']).toContain(args[tier + 1]);
          }
        }
        // The image the manifests name is built by examples/scholaria/Dockerfile, which installs the command.
        expect(readFileSync(join(root, '..', 'scholaria', 'Dockerfile'), 'utf8')).toContain('/usr/local/bin/scholaria-backup');
      });

      if (name !== 'cronjobs') {
        it('the scheduler Deployment: 2+ replicas electing a leader, scrape annotations on the metrics port, probes, a grace period', () => {
          const deployment = of('Deployment')[0]!;
          expect(deployment.spec.replicas).toBeGreaterThanOrEqual(2);
          const spec = podSpec(deployment);
          const c = spec.containers[0];
          expect(c.args.slice(0, 2)).toEqual(['scheduler', 'run']);
          const env = Object.assign({}, ...c.envFrom.map((f: Obj) => configMaps.get(f.configMapRef?.name) ?? secrets.get(f.secretRef?.name)));
          expect(env.BACKUP_LEADER_ELECTION).toBe(name === 's3' ? 's3' : 'postgres');
          const port = Number(c.args[c.args.indexOf('--metrics-port') + 1]);
          expect(port).toBe(Number(env.BACKUP_METRICS_PORT));
          expect(c.ports).toEqual([{ name: 'metrics', containerPort: port }]);
          expect(deployment.spec.template.metadata.annotations).toEqual({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(port), 'prometheus.io/path': '/metrics' });
          for (const probe of [c.livenessProbe, c.readinessProbe]) {
            expect(['/metrics', '/healthz']).toContain(probe.httpGet.path);
            expect(probe.httpGet.port).toBe('metrics');
          }
          expect(spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(60);
          expect(deployment.spec.selector.matchLabels).toEqual(
            Object.fromEntries(Object.entries(deployment.spec.template.metadata.labels).filter(([k]) => k in deployment.spec.selector.matchLabels)),
          );
          // Several replicas on one folder need a volume they can all mount.
          for (const v of spec.volumes) if (v.persistentVolumeClaim) expect(pvcs.get(v.persistentVolumeClaim.claimName)!.spec.accessModes).toContain('ReadWriteMany');
        });

        it('the restore Job is created suspended and restores with --yes only when let go', () => {
          const job = of('Job')[0]!;
          expect(job.spec.suspend).toBe(true);
          expect(job.spec.backoffLimit).toBe(0);
          const c = podSpec(job).containers[0];
          expect(c.args.slice(0, 2)).toEqual(['restore', 'latest']);
          expect(c.env).toContainEqual({ name: 'BACKUP_LEADER_ELECTION', value: 'off' });
        });
      } else {
        it('one CronJob per tier on the tier schedule, never overlapping', () => {
          const jobs = of('CronJob');
          const env = configMaps.get('scholaria-backup-config')!;
          expect(jobs.map((j) => j.spec.jobTemplate.spec.template.spec.containers[0].args[2]).sort()).toEqual([...ENGINE_TIERS].sort());
          for (const j of jobs) {
            const tier = j.spec.jobTemplate.spec.template.spec.containers[0].args[2] as string;
            expect(j.spec.schedule).toBe(env[`BACKUP_${tier.toUpperCase()}_SCHEDULE`]);
            expect(j.spec.timeZone).toBe(env.BACKUP_TIMEZONE);
            expect(j.spec.concurrencyPolicy).toBe('Forbid');
            expect(j.spec.jobTemplate.spec.template.spec.restartPolicy).toBe('Never');
          }
        });
      }
    });
  }
});
