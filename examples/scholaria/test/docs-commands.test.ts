import { describe, expect, it } from 'vitest';
import { extractCommands, type DocCommand } from './docs-commands.js';
import { assertCliBuilt, cliBin, repoRoot, run } from './helpers.js';

/**
 * Every `scholaria-backup ...` command shown in the docs (code blocks of every .md under docs/
 * and every README.md, plus whole commands in inline code), and every `scripts/*.sh` wrapper
 * call mapped to the command it runs, must parse: no unknown command, option or choice, no
 * missing argument.
 *
 * The check runs the built CLI with the documented arguments plus `--config <a missing file>`
 * (the last --config wins). Commander parses the whole line first; only when it is valid does
 * the command's action run, and the first thing every action does is load the config file, so
 * "config file ... does not exist" proves the line parsed, and nothing is ever done.
 */
const SENTINEL = '/nonexistent/scholaria-docs-check.config.mjs';

interface Verdict {
  ok: boolean;
  output: string;
}

async function parses(args: string[]): Promise<Verdict> {
  const r = await run(process.execPath, [cliBin, ...args, '--config', SENTINEL], { cwd: '/', timeoutMs: 60_000 });
  const output = `${r.stdout}${r.stderr}`.trim();
  const help = args.some((a) => ['--help', '-h', '--version', '-V', 'help'].includes(a));
  const ok = help ? r.code === 0 && !/error:/.test(output) : output.includes(`config file ${SENTINEL} does not exist`);
  return { ok, output };
}

async function checkAll(commands: string[][]): Promise<Map<string, Verdict>> {
  const verdicts = new Map<string, Verdict>();
  const queue = [...commands];
  await Promise.all(
    Array.from({ length: 6 }, async () => {
      for (let args = queue.shift(); args; args = queue.shift()) verdicts.set(JSON.stringify(args), await parses(args));
    }),
  );
  return verdicts;
}

describe('docs: every scholaria-backup command shown parses', () => {
  const commands: DocCommand[] = extractCommands(repoRoot);

  it('finds the commands of the strategy document and the docs', () => {
    const shown = new Set(commands.map((c) => c.args.join(' ')));
    // The six commands of the strategy document, through the wrapper scripts.
    for (const c of ['backup', 'restore latest', 'restore --component postgres latest', 'restore --dry-run latest', 'scheduler status', 'health-check']) {
      expect(shown).toContain(c);
    }
    expect(commands.length).toBeGreaterThan(50);
    expect(new Set(commands.map((c) => c.file)).size).toBeGreaterThan(8);
  });

  it('the check itself rejects an unknown command, option, choice or a missing argument', async () => {
    assertCliBuilt();
    const bad = [['frobnicate'], ['restore', '--bogus', 'latest'], ['backup', '--tier', 'hourly'], ['restore'], ['scheduler', 'wat']];
    const verdicts = await checkAll(bad);
    for (const args of bad) expect({ args, ok: verdicts.get(JSON.stringify(args))!.ok }).toEqual({ args, ok: false });
    const good = await checkAll([['restore', '--dry-run', 'latest'], ['--help']]);
    expect([...good.values()].map((v) => v.ok)).toEqual([true, true]);
  }, 120_000);

  it('every documented command parses with the built CLI', async () => {
    assertCliBuilt();
    const unique = [...new Map(commands.map((c) => [JSON.stringify(c.args), c.args])).values()];
    const verdicts = await checkAll(unique);
    const failures = commands
      .filter((c) => !verdicts.get(JSON.stringify(c.args))!.ok)
      .map((c) => `${c.file}:${c.line}: ${c.source}\n    -> scholaria-backup ${c.args.join(' ')}\n    ${verdicts.get(JSON.stringify(c.args))!.output.split('\n').slice(0, 3).join('\n    ')}`);
    expect(failures).toEqual([]);
  }, 300_000);
});
