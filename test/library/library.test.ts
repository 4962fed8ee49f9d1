/**
 * The library entry as another program sees it: a separate package that depends on jbackup
 * (node_modules/jbackup → this checkout, built) runs the README's "Use as a library" example,
 * init → backup → restore, through `import … from 'jbackup'`.
 */
import { afterAll, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanupTmpDirs, tmpDir } from '../helpers/tools.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

afterAll(cleanupTmpDirs);

async function readmeExample(): Promise<string> {
  const readme = await fsp.readFile(path.join(ROOT, 'README.md'), 'utf8');
  const m = /<!-- library-example -->\n```js\n([\s\S]*?)```/.exec(readme);
  if (!m) throw new Error('README.md has no library example');
  return m[1]!;
}

async function tree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string, rel: string) => {
    for (const e of await fsp.readdir(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(path.join(d, e.name), r);
      else out[r] = await fsp.readFile(path.join(d, e.name), 'utf8');
    }
  };
  await walk(dir, '');
  return out;
}

it('a separate package imports jbackup by name and runs the README example: init → backup → restore', async () => {
  const t = await tmpDir('library');
  const demo = path.join(t, 'demo');
  const docs = path.join(demo, 'docs');
  await fsp.mkdir(path.join(docs, 'sub'), { recursive: true });
  await fsp.writeFile(path.join(docs, 'a.txt'), 'hello\n');
  await fsp.writeFile(path.join(docs, 'sub', 'b.txt'), 'x'.repeat(100_000));

  const pkg = path.join(t, 'consumer');
  await fsp.mkdir(path.join(pkg, 'node_modules'), { recursive: true });
  await fsp.writeFile(path.join(pkg, 'package.json'), JSON.stringify({ name: 'consumer', type: 'module', private: true, dependencies: { jbackup: '*' } }));
  await fsp.symlink(ROOT, path.join(pkg, 'node_modules', 'jbackup'), 'dir');
  const code = (await readmeExample()).replaceAll('/tmp/jbackup-demo', demo);
  await fsp.writeFile(path.join(pkg, 'example.mjs'), code);

  const env = { ...process.env, JBACKUP_KDF_PARAMS: '1024,8,1' };
  for (const k of ['JBACKUP_REPOSITORY', 'JBACKUP_PASSWORD', 'JBACKUP_PASSWORD_FILE', 'JBACKUP_PASSWORD_COMMAND']) delete env[k];
  const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const c = spawn(process.execPath, ['example.mjs'], { cwd: pkg, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    c.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    c.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toMatch(/^snapshot [0-9a-f]{8}: 2 new files\n$/);
  // restic's layout: the target's absolute path below the restore target
  expect(await tree(path.join(demo, 'restored', docs))).toEqual(await tree(docs));
}, 120_000);

it('the package carries its types: a TypeScript program importing jbackup by name type-checks', async () => {
  const pkg = await tmpDir('library-types');
  await fsp.mkdir(path.join(pkg, 'node_modules'), { recursive: true });
  await fsp.writeFile(path.join(pkg, 'package.json'), JSON.stringify({ name: 'consumer', type: 'module', private: true }));
  await fsp.symlink(ROOT, path.join(pkg, 'node_modules', 'jbackup'), 'dir');
  await fsp.writeFile(path.join(pkg, 'a.ts'), `import { initRepository, backup, restore, exitCodeOf, type BackupOptions } from 'jbackup';
const o: BackupOptions = { targets: ['/x'], progress: { error: (p: string, e: Error) => { console.error(p, e.message); } } };
export async function f(): Promise<number> {
  const repo = await initRepository('/tmp/x', 'pw');
  const s = await backup(repo, o);
  const r = await restore(repo, { snapshot: s.snapshot_id, target: '/y' });
  return r.files + exitCodeOf(new Error('x'));
}
// a wrong option must not type-check
// @ts-expect-error
export const bad: BackupOptions = { target: ['/x'] };
`);
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
    const c = spawn(process.execPath, [tsc, '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--skipLibCheck',
      '--types', 'node', '--typeRoots', path.join(ROOT, 'node_modules', '@types'), 'a.ts'], { cwd: pkg, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    c.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    c.on('close', (code) => resolve({ code, out }));
  });
  expect(r.code, r.out).toBe(0);
}, 120_000);
