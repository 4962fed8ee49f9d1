/**
 * Interrupting a snapshot: Ctrl-C / SIGTERM while --files-from or --exclude-file waits on a FIFO
 * exits 130 (nothing blocks signal handling); SIGINT in the middle of writing packs leaves no temp
 * file behind; temp files of a dead jbackup process are removed by the next snapshot, those of a
 * live process (any lock) and old unnamed ones are left alone.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { constants as fsc, closeSync, mkdirSync, openSync, promises as fsp, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { cleanupTmpDirs, JBACKUP_BIN, runJbackup, tmpDir } from '../helpers/tools.js';
import { prngBytes } from '../helpers/fstree.js';

const PW = 'interrupt-pw';
let dir: string;
let repo: string;
let src: string;
const env = () => ({ ...process.env, JBACKUP_REPOSITORY: repo, JBACKUP_PASSWORD: PW, JBACKUP_KDF_PARAMS: '1024,8,1', JBACKUP_PACK_SIZE: '4' });

beforeAll(async () => {
  dir = await tmpDir('interrupt');
  repo = path.join(dir, 'repo');
  src = path.join(dir, 'src');
  mkdirSync(src);
  for (let i = 0; i < 12; i++) writeFileSync(path.join(src, `big${i}.bin`), prngBytes(`big${i}`, 6 * 1024 * 1024));
  expect((await runJbackup(['init'], { env: env() })).code).toBe(0);
});
afterAll(cleanupTmpDirs);

const exitOf = (c: ChildProcess) => new Promise<number | null>((r) => c.on('exit', (code) => r(code)));
/** wait for a condition by polling (what it waits for happens in another process) */
async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 120_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
/** the FIFO has a reader once a non-blocking open for writing succeeds (ENXIO before) */
function openWriterWhenRead(fifo: string): Promise<number> {
  let fd = -1;
  return until(`a reader of ${fifo}`, () => {
    try { fd = openSync(fifo, fsc.O_WRONLY | fsc.O_NONBLOCK); return true; } catch { return false; }
  }).then(() => fd);
}
async function tempFiles(root: string): Promise<string[]> {
  return (await fsp.readdir(root, { recursive: true })).map(String).filter((f) => f.includes('-tmp-')).sort();
}

for (const [flag, sig] of [['--files-from', 'SIGINT'], ['--exclude-file', 'SIGTERM']] as const) {
  it(`${sig} while ${flag} waits on a FIFO with a silent writer: exit 130 at once`, async () => {
    const fifo = path.join(dir, `fifo-${flag.slice(2)}`);
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const args = flag === '--files-from' ? ['snapshot', flag, fifo] : ['snapshot', flag, fifo, src];
    const child = spawn(process.execPath, [JBACKUP_BIN, ...args], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (b: Buffer) => { stderr += b.toString(); });
    const exited = exitOf(child);
    // the writer is open and writes nothing: a blocking read would wait forever
    const fd = await openWriterWhenRead(fifo);
    try {
      child.kill(sig);
      expect(await exited, stderr).toBe(130);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      closeSync(fd);
    }
    expect(await fsp.readdir(path.join(repo, 'snapshots'))).toEqual([]);
  }, 180_000);
}

it('a FIFO that delivers its list is read to its end', async () => {
  const fifo = path.join(dir, 'fifo-list');
  expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
  const small = path.join(dir, 'small');
  mkdirSync(small);
  writeFileSync(path.join(small, 'f'), 'x\n');
  const child = spawn(process.execPath, [JBACKUP_BIN, '--json', 'snapshot', '--files-from', fifo], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout!.on('data', (b: Buffer) => { stdout += b.toString(); });
  const exited = exitOf(child);
  const fd = await openWriterWhenRead(fifo);
  writeFileSync(fd, `${small}\n`);
  closeSync(fd);
  expect(await exited).toBe(0);
  expect(stdout).toContain('"message_type":"summary"');
  const snaps = JSON.parse((await runJbackup(['--json', 'snapshots'], { env: env() })).stdout) as { paths: string[] }[];
  expect(snaps.some((s) => s.paths.join() === small)).toBe(true);
}, 180_000);

it('SIGINT while packs are being written: exit 130, no temp file left behind', async () => {
  const child = spawn(process.execPath, [JBACKUP_BIN, 'snapshot', src], { env: env(), stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => { stderr += b.toString(); });
  const exited = exitOf(child);
  let finished = false;
  void exited.then(() => { finished = true; });
  await until('a pack temp file', async () => finished || (await tempFiles(path.join(repo, 'data'))).length > 0);
  expect(finished, 'the snapshot ended before a pack was being written').toBe(false);
  child.kill('SIGINT');
  expect(await exited, stderr).toBe(130);
  expect(await tempFiles(repo)).toEqual([]);
  expect(await fsp.readdir(path.join(repo, 'locks'))).toEqual([]);
}, 180_000);

it('the next snapshot removes temp files of dead jbackup processes of this host, never a live one\'s', async () => {
  const host = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);
  // a pid that is certainly gone: a child that has exited
  const dead = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  const deadPid = dead.pid!;
  await exitOf(dead);
  const name = (pid: number, prefix = 'pack') => `${prefix}-tmp-${host}-${pid.toString(16)}-0123456789ab`;
  const id = 'ab'.repeat(32);
  const files = {
    deadPack: path.join(repo, 'data', 'ab', name(deadPid)),
    deadIndex: path.join(repo, 'index', name(deadPid, id)),
    // this test process is alive (it could be a jbackup holding any lock)
    livePack: path.join(repo, 'data', 'cd', name(process.pid)),
    otherHost: path.join(repo, 'data', 'ab', `pack-tmp-ffffffff-${deadPid.toString(16)}-0123456789ab`),
    // an earlier version's name says nothing about its writer: only prune's age rule applies
    unnamed: path.join(repo, 'data', 'ab', 'pack-tmp-0123456789ab'),
  };
  for (const f of Object.values(files)) writeFileSync(f, 'partial');
  const r = await runJbackup(['snapshot', path.join(src, 'big0.bin')], { env: env() });
  expect(r.code, r.stderr).toBe(0);
  const left = await tempFiles(repo);
  const rel = (f: string) => path.relative(repo, f);
  expect(left).toEqual([files.livePack, files.otherHost, files.unnamed].map(rel).sort());
  for (const f of [files.livePack, files.otherHost, files.unnamed]) await fsp.rm(f);
}, 180_000);
