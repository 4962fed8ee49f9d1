/**
 * restic-style exclude patterns: glob per path component (`*`, `?`, `[...]`, `**` spanning
 * components). A pattern that does not start with `/` may match at any depth; a pattern that
 * matches a directory excludes everything below it. `--iexclude` matches case-insensitively.
 */
export interface Matcher {
  (absPath: string): boolean;
}

export function globToRegex(g: string, flags: string): RegExp {
  let re = '';
  for (let i = 0; i < g.length; i++) {
    const c = g[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const j = g.indexOf(']', i + 2);
      if (j < 0) { re += '\\['; continue; }
      let cls = g.slice(i + 1, j).replace(/\\/g, '\\\\');
      if (cls.startsWith('^') || cls.startsWith('!')) cls = `^${cls.slice(1)}`;
      re += `[${cls}]`;
      i = j;
    } else if (c === '\\' && i + 1 < g.length) re += `\\${g[++i]!}`;
    else re += c.replace(/[.+^${}()|\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, flags);
}

function compile(pattern: string, insensitive: boolean): (parts: string[]) => boolean {
  const flags = insensitive ? 'i' : '';
  let p = pattern.replace(/\/+$/, '');
  const absolute = p.startsWith('/');
  if (absolute) p = p.slice(1);
  const segs = p.split('/').filter((s) => s !== '');
  const pats: (RegExp | '**')[] = segs.map((s) => (s === '**' ? '**' : globToRegex(s, flags)));
  if (!absolute) pats.unshift('**');
  const matchFrom = (pi: number, parts: string[], si: number): boolean => {
    if (pi === pats.length) return true; // pattern consumed: matches this path or a parent of it
    const pt = pats[pi]!;
    if (pt === '**') {
      for (let k = si; k <= parts.length; k++) if (matchFrom(pi + 1, parts, k)) return true;
      return false;
    }
    if (si >= parts.length) return false;
    return pt.test(parts[si]!) && matchFrom(pi + 1, parts, si + 1);
  };
  return (parts) => matchFrom(0, parts, 0);
}

export function makeMatcher(excludes: string[], iexcludes: string[]): Matcher | null {
  const fns = [
    ...excludes.filter((e) => e.trim() !== '').map((e) => compile(e, false)),
    ...iexcludes.filter((e) => e.trim() !== '').map((e) => compile(e, true)),
  ];
  if (fns.length === 0) return null;
  return (absPath: string) => {
    const parts = absPath.split('/').filter((s) => s !== '');
    return fns.some((f) => f(parts));
  };
}

/**
 * Lines of an exclude file: blank lines and `#` comments skipped, `$VAR` expanded from `env` as restic
 * does (the caller passes the environment: the CLI its own).
 */
export function parseExcludeFile(text: string, env: Readonly<Record<string, string | undefined>>): string[] {
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => l.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_, v: string) => env[v] ?? ''));
}
