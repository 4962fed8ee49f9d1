/**
 * External-tool helpers for interoperability tests (restic, rclone, the jbackup CLI).
 */
import { spawn } from 'node:child_process';
import { accessSync, constants as fsc, existsSync, rmSync, statSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'vitest';

export type ExternalTool = 'restic' | 'rclone';

export interface RunResult {
  code: number;
  /** stdout decoded as UTF-8 after all chunks were concatenated (no split multi-byte chars). */
  stdout: string;
  stderr: string;
  /** Raw stdout bytes (e.g. for non-UTF-8 file names). */
  stdoutBuffer: Buffer;
}

/** Absolute path of `name` found on PATH, or null. */
export function findTool(name: ExternalTool): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      if (!statSync(candidate).isFile()) continue;
      accessSync(candidate, fsc.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/** True when JBACKUP_REQUIRE_INTEROP=1: missing external tools then fail instead of skipping. */
export function requireInterop(): boolean {
  return process.env.JBACKUP_REQUIRE_INTEROP === '1';
}

/**
 * `describe` that runs only when `tool` is on PATH. When it is missing, the suite is
 * skipped with a console note, or, with JBACKUP_REQUIRE_INTEROP=1, replaced by a failing test.
 */
export function interopDescribe(tool: ExternalTool, name: string, fn: () => void): void {
  if (findTool(tool)) {
    describe(name, fn);
  } else if (requireInterop()) {
    describe(name, () => {
      it(`requires ${tool}`, () => {
        throw new Error(`${tool} is required (JBACKUP_REQUIRE_INTEROP=1) but not found`);
      });
    });
  } else {
    console.warn(`[interop] skipping "${name}": ${tool} not found on PATH (set JBACKUP_REQUIRE_INTEROP=1 to make this fail)`);
    describe.skip(name, fn);
  }
}

// ---------------------------------------------------------------------------
// temporary directories

const tmpDirs = new Set<string>();

/** Create a fresh directory under os.tmpdir(); removed by cleanupTmpDirs() unless JBACKUP_KEEP_TMP=1. */
export async function tmpDir(prefix: string): Promise<string> {
  const safe = prefix.replace(/[^A-Za-z0-9_.-]/g, '_');
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), `jbackup-${safe}-`));
  tmpDirs.add(dir);
  return dir;
}

/** Remove a tree, also when it contains read-only files/dirs (needed when not root). */
export async function removeTree(dir: string): Promise<void> {
  try {
    await fsp.rm(dir, { recursive: true, force: true });
  } catch {
    await spawnCollect('chmod', ['-R', 'u+rwX', dir], {});
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

/** Remove all directories created by tmpDir() (call from afterAll). Keeps them when JBACKUP_KEEP_TMP=1. */
export async function cleanupTmpDirs(): Promise<void> {
  if (process.env.JBACKUP_KEEP_TMP === '1') {
    if (tmpDirs.size > 0) console.warn(`[tmpDir] keeping: ${[...tmpDirs].join(' ')}`);
    tmpDirs.clear();
    return;
  }
  const dirs = [...tmpDirs];
  tmpDirs.clear();
  resticCacheDir = null;
  await Promise.all(dirs.map(removeTree));
}

// best effort if a test file forgot cleanupTmpDirs()
process.once('exit', () => {
  if (process.env.JBACKUP_KEEP_TMP === '1') return;
  for (const d of tmpDirs) {
    try {
      rmSync(d, { recursive: true, force: true });
    } catch {
      // ignore
    }
  }
});

// ---------------------------------------------------------------------------
// process runners

interface SpawnOpts {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string;
}

function spawnCollect(cmd: string, args: string[], opts: SpawnOpts): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const stdin = opts.input === undefined ? 'ignore' : 'pipe';
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: [stdin, 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const stdoutBuffer = Buffer.concat(out);
      resolve({
        code: code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1),
        stdout: stdoutBuffer.toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        stdoutBuffer,
      });
    });
    if (child.stdin) {
      child.stdin.on('error', () => {
        // the child may exit without reading its input (EPIPE); its exit code tells
      });
      child.stdin.end(opts.input);
    }
  });
}

let resticCacheDir: string | null = null;

export interface ResticOptions {
  repo: string;
  password: string;
  cwd?: string;
  env?: Record<string, string>;
  input?: string;
}

/**
 * Run restic against `repo`. The inherited environment is stripped of RESTIC_* variables;
 * RESTIC_CACHE_DIR points to a per-process temp dir; TZ is passed through.
 */
export async function runRestic(args: string[], opts: ResticOptions): Promise<RunResult> {
  const bin = findTool('restic');
  if (!bin) throw new Error('restic not found on PATH');
  if (!resticCacheDir) resticCacheDir = await tmpDir('restic-cache');
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('RESTIC_')) env[k] = v;
  if (process.env.TZ !== undefined) env.TZ = process.env.TZ;
  env.RESTIC_REPOSITORY = opts.repo;
  env.RESTIC_PASSWORD = opts.password;
  env.RESTIC_CACHE_DIR = resticCacheDir;
  Object.assign(env, opts.env ?? {});
  return spawnCollect(bin, args, { cwd: opts.cwd, env, input: opts.input });
}

/** restic's version as [major, minor, patch], e.g. [0, 14, 0]. */
export async function resticVersion(): Promise<[number, number, number]> {
  const bin = findTool('restic');
  if (!bin) throw new Error('restic not found on PATH');
  const r = await spawnCollect(bin, ['version'], {});
  const m = /restic (\d+)\.(\d+)\.(\d+)/.exec(r.stdout);
  if (!m) throw new Error(`cannot parse restic version: ${r.stdout}`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

/** Absolute path of the jbackup CLI entry point (bin/jbackup in this repository). */
export const JBACKUP_BIN = fileURLToPath(new URL('../../bin/jbackup', import.meta.url));

export interface JbackupOptions {
  env?: Record<string, string>;
  cwd?: string;
  input?: string;
}

/** Run `node bin/jbackup ...args`. Throws if the CLI does not exist (yet). */
export async function runJbackup(args: string[], opts: JbackupOptions = {}): Promise<RunResult> {
  if (!existsSync(JBACKUP_BIN)) throw new Error(`runJbackup: CLI entry point not found at ${JBACKUP_BIN}`);
  const env: NodeJS.ProcessEnv = { ...process.env, ...(opts.env ?? {}) };
  return spawnCollect(process.execPath, [JBACKUP_BIN, ...args], { cwd: opts.cwd, env, input: opts.input });
}
