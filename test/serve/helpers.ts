/** Shared set-up of the serve tests: a source tree, a repository holding it, a running server, external tools. */
import { spawn } from 'node:child_process';
import { accessSync, constants as fsc, existsSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'vitest';
import { backup } from '../../src/ops/backup.js';
import { closeRepository, initRepository, openRepository } from '../../src/ops/repository.js';
import { serve, type ServeHandle, type ServeOptions } from '../../src/ops/serve.js';
import type { Repository } from '../../src/repo/repository.js';
import { prngBytes } from '../helpers/fstree.js';
import { requireInterop, type RunResult } from '../helpers/tools.js';

export const PW = 'serve-pw';
export const KDF = { N: 1024, r: 8, p: 1 };

/** a program on PATH (or in /sbin, /usr/sbin), or null */
export function findProgram(name: string): string | null {
  for (const d of [...(process.env['PATH'] ?? '').split(path.delimiter), '/sbin', '/usr/sbin']) {
    if (!d) continue;
    const p = path.join(d, name);
    try { accessSync(p, fsc.X_OK); return p; } catch { /* next */ }
  }
  return null;
}

/**
 * describe that needs `tools`: skipped with a note, or failing under JBACKUP_REQUIRE_INTEROP=1; `machine`
 * names what the machine lacks otherwise (no /dev/fuse, not root): always a skip, CI or not.
 */
export function withTools(tools: string[], name: string, fn: () => void, machine?: () => string | null): void {
  const missing = tools.filter((t) => !findProgram(t));
  const lacks = missing.length ? null : machine?.() ?? null;
  if (lacks) {
    console.warn(`[interop] skipping "${name}": the machine ${lacks}`);
    describe.skip(name, fn);
    return;
  }
  const why = missing.length ? `${missing.join(', ')} not found` : null;
  if (!why) { describe(name, fn); return; }
  if (requireInterop()) {
    describe(name, () => { it(`requires ${tools.join(', ')}`, () => { throw new Error(`${why} (JBACKUP_REQUIRE_INTEROP=1)`); }); });
    return;
  }
  console.warn(`[interop] skipping "${name}": ${why} (set JBACKUP_REQUIRE_INTEROP=1 to make this fail)`);
  describe.skip(name, fn);
}

export function runTool(cmd: string, args: string[], o: { env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { env: o.env ?? process.env, stdio: [o.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    c.stdout!.on('data', (d: Buffer) => out.push(d));
    c.stderr!.on('data', (d: Buffer) => err.push(d));
    c.on('error', reject);
    c.on('close', (code) => {
      const stdoutBuffer = Buffer.concat(out);
      resolve({ code: code ?? 1, stdout: stdoutBuffer.toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), stdoutBuffer });
    });
    c.stdin?.end(o.input);
  });
}

/**
 * A source tree clients can reproduce exactly: nested folders, Unicode names, an empty file, a file
 * of several blobs (12 MiB of random bytes: about a dozen FastCDC chunks), a symlink to a file.
 */
export async function makeSource(root: string): Promise<Record<string, Buffer>> {
  const files: Record<string, Buffer> = {
    'a.txt': Buffer.from('alpha\n'),
    'empty': Buffer.alloc(0),
    'page.html': Buffer.from('<script>fetch("/snapshots/")</script>\n'),
    'docs/readme.md': Buffer.from('# read me\n'),
    'docs/ünïcödé – ✓.txt': Buffer.from('unicode name\n'),
    'docs/with space & more#?.txt': Buffer.from('odd characters\n'),
    'deep/a/b/c/d.bin': prngBytes('deep', 70_000),
    'photos/big.bin': prngBytes('big', 12 << 20),
  };
  for (const [rel, content] of Object.entries(files)) {
    await fsp.mkdir(path.dirname(path.join(root, rel)), { recursive: true });
    await fsp.writeFile(path.join(root, rel), content);
  }
  await fsp.symlink('../a.txt', path.join(root, 'docs', 'link-to-a'));
  files['docs/link-to-a'] = files['a.txt']!;
  // whole seconds: WebDAV's getlastmodified has no fractions
  const t = new Date('2024-05-06T07:08:09Z');
  for (const rel of Object.keys(files)) if (rel !== 'docs/link-to-a') await fsp.utimes(path.join(root, rel), t, t);
  return files;
}

/** a local repository with one snapshot of `src` (its absolute path is mirrored in the tree) */
export async function repoWithSnapshot(repoDir: string, src: string): Promise<void> {
  const repo = await initRepository(repoDir, PW, { kdf: KDF });
  await backup(repo, { targets: [src], host: 'serve-host', tags: ['t1'] });
  await closeRepository(repo);
}

export interface TestServer {
  repo: Repository;
  h: ServeHandle;
  /** Basic auth header value */
  auth: string;
  /** the URL of a path below the root (segments percent-encoded) */
  url(rel: string): string;
  close(): Promise<void>;
}

export async function startServe(location: string | Repository, o: ServeOptions = {}): Promise<TestServer> {
  const repo = typeof location === 'string' ? await openRepository(location, PW) : location;
  const h = await serve(repo, o);
  return {
    repo, h,
    auth: `Basic ${Buffer.from(`${h.username}:${h.password}`).toString('base64')}`,
    url: (rel) => h.url + rel.split('/').map((s) => encodeURIComponent(s)).join('/'),
    close: async () => { await h.close(); if (typeof location === 'string') await closeRepository(repo); },
  };
}

/** the served path of a directory that was backed up by absolute path */
export const servedPath = (abs: string) => path.resolve(abs).split(path.sep).filter(Boolean).join('/');

export const hasFuseMount = () => (!existsSync('/dev/fuse') ? 'has no /dev/fuse' : process.getuid?.() !== 0 ? 'runs the tests as a user, davfs2 mounts need root' : null);
