import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parse, type ParseEntry } from 'shell-quote';

/** One `scholaria-backup` invocation found in the docs, as the CLI would receive its arguments. */
export interface DocCommand {
  file: string;
  line: number;
  /** The command as written (one logical line). */
  source: string;
  /** Arguments for scholaria-backup (wrapper scripts mapped to the CLI command they run). */
  args: string[];
}

/** Every README.md of the repository (outside node_modules) and every .md under docs/. */
export function markdownFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, all: boolean) => {
    for (const name of readdirSync(dir)) {
      if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path, all);
      else if (name.endsWith('.md') && (all || name === 'README.md')) out.push(path);
    }
  };
  walk(join(root, 'docs'), true);
  out.push(join(root, 'README.md'));
  for (const top of ['packages', 'examples']) walk(join(root, top), false);
  return out.sort();
}

const SHELL_LANGS = new Set(['bash', 'sh', 'shell', 'console', 'zsh', '']);

/** Fenced code blocks in shell languages (and unlabelled ones), with their first line number. */
function shellBlocks(text: string): { lang: string; startLine: number; lines: string[] }[] {
  const blocks: { lang: string; startLine: number; lines: string[] }[] = [];
  const lines = text.split('\n');
  let current: { lang: string; startLine: number; lines: string[]; fence: string } | undefined;
  lines.forEach((line, i) => {
    const fence = /^(\s*)(`{3,}|~{3,})\s*([\w+-]*)/.exec(line);
    if (!current && fence) {
      current = { lang: fence[3]!.toLowerCase(), startLine: i + 2, lines: [], fence: fence[2]! };
      return;
    }
    if (current && line.trim().startsWith(current.fence) && line.trim().replace(/[`~]/g, '') === '') {
      if (SHELL_LANGS.has(current.lang)) blocks.push(current);
      current = undefined;
      return;
    }
    current?.lines.push(line);
  });
  return blocks;
}

/** Synopsis lines (`scholaria-backup restore <latest|SET_ID> [--dry-run]`, also with Korean placeholders such as `<폴더>`) document syntax; they are not commands. */
function isSynopsis(source: string): boolean {
  return /\[-|\[[a-z]+\||<[\p{L}\p{N}_|.-]+>|\.\.\.|\|\s*--/u.test(source) || /\b[A-Z][A-Z_]{2,}\b(?!=)/.test(source.replace(/\$[A-Z_]+|"[^"]*"|'[^']*'/g, ''));
}

const WRAPPERS: Record<string, (args: string[]) => string[] | undefined> = {
  'backup.sh': (args) => ['backup', ...args],
  'restore.sh': (args) => ['restore', ...args],
  'backup-scheduler.sh': ([sub, ...rest]) => {
    if (sub === 'run' || sub === 'start') return ['scheduler', 'run', ...rest];
    if (sub === 'status') return ['scheduler', 'status', ...rest];
    if (sub === 'health-check' || sub === 'health') return ['health-check', ...rest];
    return undefined;
  },
};

/**
 * The words of a simple command from the program on: leading `VAR=value` assignments, `sudo`,
 * `npx`, `exec`, `time`, `env`, and `docker compose exec|run [options] <service>` are skipped.
 */
function commandWords(words: string[]): string[] {
  let i = 0;
  for (;;) {
    const w = words[i];
    if (w === undefined) return [];
    if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(w) || ['sudo', 'npx', 'exec', 'time', 'env'].includes(w)) i++;
    else if (w === 'docker' && words[i + 1] === 'compose' && (words[i + 2] === 'exec' || words[i + 2] === 'run')) {
      i += 3;
      while (words[i]?.startsWith('-')) i += /^-(e|u|w|-env|-user|-workdir)$/.test(words[i]!) ? 2 : 1;
      i++; // the service
    } else return words.slice(i);
  }
}

/** Splits one logical shell line into simple commands and finds scholaria-backup (or a wrapper) in each. */
function commandsInLine(source: string): string[][] {
  let tokens: ParseEntry[];
  try {
    tokens = parse(source, (name) => `$${name}`);
  } catch {
    return [];
  }
  const found: string[][] = [];
  let segment: string[] = [];
  const flush = () => {
    const command = commandWords(segment);
    const head = command[0] ?? '';
    if (/(^|\/)scholaria-backup$/.test(head)) found.push(command.slice(1));
    else if (head === 'node' && /packages\/cli\/dist\/bin\.js$/.test(command[1] ?? '')) found.push(command.slice(2));
    else if (/(^|\/)scripts\/(backup|restore|backup-scheduler)\.sh$/.test(head)) {
      const mapped = WRAPPERS[head.split('/').pop()!]?.(command.slice(1));
      if (mapped) found.push(mapped);
    }
    segment = [];
  };
  let redirectTarget = false;
  for (const t of tokens) {
    if (typeof t === 'string') {
      if (redirectTarget) redirectTarget = false;
      else segment.push(t);
      continue;
    }
    if ('comment' in t) break;
    if ('op' in t) {
      // Redirections take the next word as their target; everything else (|, &&, ;, and the
      // parentheses of `$(...)` and subshells) separates commands.
      if (/^[<>]/.test(t.op)) redirectTarget = true;
      else flush();
      continue;
    }
    if ('pattern' in t) segment.push((t as { pattern: string }).pattern);
  }
  flush();
  return found;
}

/** Inline code spans outside fenced blocks that hold a whole command, e.g. in a table or a sentence. */
function inlineCommands(text: string): { line: number; source: string }[] {
  const out: { line: number; source: string }[] = [];
  let fence: string | undefined;
  text.split('\n').forEach((line, i) => {
    const f = /^\s*(`{3,}|~{3,})/.exec(line);
    if (f) {
      if (!fence) fence = f[1];
      else if (line.trim().replace(/[`~]/g, '') === '') fence = undefined;
      return;
    }
    if (fence) return;
    for (const m of line.matchAll(/`([^`]+)`/g)) {
      const code = m[1]!.trim();
      if (/^(?:[A-Z_]+=\S+ )*(?:scholaria-backup|\.?\/?scripts\/(?:backup|restore|backup-scheduler)\.sh|docker compose exec (?:-T )?backup \S+)(?: |$)/.test(code)) {
        out.push({ line: i + 1, source: code });
      }
    }
  });
  return out;
}

export function extractCommands(root: string): DocCommand[] {
  const out: DocCommand[] = [];
  for (const file of markdownFiles(root)) {
    const text = readFileSync(file, 'utf8');
    const rel = relative(root, file);
    for (const { line, source } of inlineCommands(text)) {
      if (isSynopsis(source)) continue;
      // Prose names commands too (`scholaria-backup restore`); a span counts as a whole command
      // when it has arguments beyond the subcommand, or runs a wrapper script.
      const wrapper = /scripts\/(backup|restore|backup-scheduler)\.sh/.test(source);
      for (const args of commandsInLine(source)) if (args.length >= 2 || (wrapper && args[0] === 'backup')) out.push({ file: rel, line, source, args });
    }
    for (const block of shellBlocks(text)) {
      const console = block.lang === 'console';
      let logical = '';
      let startLine = block.startLine;
      block.lines.forEach((raw, i) => {
        let line = raw;
        if (logical === '') {
          startLine = block.startLine + i;
          if (console) {
            // Only prompt lines are commands; the rest is output.
            if (!/^\s*\$ /.test(line)) return;
            line = line.replace(/^\s*\$ /, '');
          }
        }
        if (/\\\s*$/.test(line)) {
          logical += line.replace(/\\\s*$/, ' ');
          return;
        }
        logical += line;
        const source = logical.trim();
        logical = '';
        if (!/scholaria-backup\s|scholaria-backup$|dist\/bin\.js\s|scripts\/(backup|restore|backup-scheduler)\.sh/.test(source)) return;
        if (isSynopsis(source)) return;
        for (const args of commandsInLine(source)) out.push({ file: rel, line: startLine, source, args });
      });
    }
  }
  return out;
}
