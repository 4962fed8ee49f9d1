/**
 * The layer order of SPEC.md §2 ("Layers"), kept true: every module in src/ imports only from its own
 * layer or from layers below it, and nothing in src/ imports the emulator in tools/. The table is read
 * from SPEC.md itself, so the document and the check cannot drift apart.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SRC = path.join(ROOT, 'src');

/** layer entries of SPEC §2: each numbered item names its folders (`src/x/`) or files (`src/x.ts`) */
function readLayers(spec: string): string[][] {
  const start = spec.indexOf('### Layers');
  if (start < 0) throw new Error('SPEC.md has no "### Layers" section');
  const end = spec.indexOf('\n### ', start + 1);
  const section = spec.slice(start, end < 0 ? undefined : end);
  const layers: string[][] = [];
  for (const item of section.split(/\n(?=\d+\. )/).filter((l) => /^\d+\. /.test(l))) {
    // the names at the start of the item, before its description
    const head = item.slice(0, item.indexOf(':') < 0 ? undefined : item.indexOf(':'));
    const names = [...head.matchAll(/`(src\/[^`]+)`/g)].map((m) => m[1]!);
    if (names.length === 0) throw new Error(`SPEC.md layer item names no src/ path: ${item.split('\n')[0]}`);
    layers.push(names);
  }
  return layers;
}

/** the layer index of a path relative to the repository root, or -1 */
function layerOf(layers: string[][], rel: string): number {
  return layers.findIndex((names) => names.some((n) => (n.endsWith('/') ? rel.startsWith(n) : rel === n)));
}

/** relative module specifiers of a source file: static imports/exports, dynamic import(), worker modules */
function importsOf(text: string): string[] {
  // comments could hold import-shaped text; template strings of generated code never start with a quote+dot here
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const out: string[] = [];
  for (const m of code.matchAll(/\b(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)) out.push(m[1]!);
  // workerModuleUrl(import.meta.url, 'repo/decodeworker') names a module by its path under src/
  for (const m of code.matchAll(/workerModuleUrl\(\s*import\.meta\.url\s*,\s*['"]([^'"]+)['"]/g)) out.push(`@src/${m[1]!}.js`);
  return out;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => path.join(dir, f));
}

const layers = readLayers(readFileSync(path.join(ROOT, 'SPEC.md'), 'utf8'));

describe('layers (SPEC.md §2)', () => {
  it('the table is read from SPEC.md, bottom to top, util first and cli last but the entry', () => {
    expect(layers[0]).toContain('src/util/');
    expect(layers.findIndex((l) => l.includes('src/repo/'))).toBeGreaterThan(layers.findIndex((l) => l.includes('src/backend/')));
    expect(layers.at(-2)).toContain('src/cli/');
  });

  it('every source file in src/ is in a layer', () => {
    const orphans = sourceFiles(SRC).map((f) => path.relative(ROOT, f).split(path.sep).join('/')).filter((rel) => layerOf(layers, rel) < 0);
    expect(orphans, 'add their folder to SPEC.md §2 "Layers"').toEqual([]);
  });

  it('no module imports from a layer above its own, nor from tools/', () => {
    const bad: string[] = [];
    for (const file of sourceFiles(SRC)) {
      const rel = path.relative(ROOT, file).split(path.sep).join('/');
      const mine = layerOf(layers, rel);
      for (const spec of importsOf(readFileSync(file, 'utf8'))) {
        const target = spec.startsWith('@src/') ? path.join(SRC, spec.slice(5)) : path.resolve(path.dirname(file), spec);
        const trel = path.relative(ROOT, target).split(path.sep).join('/').replace(/\.js$/, '.ts');
        if (!trel.startsWith('src/')) { bad.push(`${rel} → ${trel} (outside the library)`); continue; }
        const theirs = layerOf(layers, trel);
        if (theirs > mine) bad.push(`${rel} (layer ${mine + 1}) → ${trel} (layer ${theirs + 1})`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('the check sees what it must: imports of every shape, and an upward one is reported', () => {
    const text = [
      "import { a } from '../repo/x.js';",
      "import type { B } from './y.js';",
      "export { c } from '../util/z.js';",
      'import {\n  d,\n  e,\n} from "../cli/w.js";',
      "const m = await import('./lazy.js');",
      "new Worker(workerModuleUrl(import.meta.url, 'repo/decodeworker'));",
      "// import { no } from '../cli/comment.js';",
      "import { readFileSync } from 'node:fs';",
    ].join('\n');
    expect(importsOf(text)).toEqual(['../repo/x.js', './y.js', '../util/z.js', '../cli/w.js', './lazy.js', '@src/repo/decodeworker.js']);
    expect(layerOf(layers, 'src/cli/w.ts')).toBeGreaterThan(layerOf(layers, 'src/repo/x.ts'));
  });
});
