/**
 * check's output: --read-data progress (JSON status lines, the live terminal line) and that check
 * reports every problem and goes on: several packs damaged in different ways, an unreadable index
 * file and snapshot, all named in one run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { cleanupTmpDirs, JBACKUP_BIN, runJbackup, tmpDir } from '../helpers/tools.js';
import { prngBytes } from '../helpers/fstree.js';
import { itemProgressLine, itemProgressStatus } from '../../src/cli/progress.js';

const PW = 'check-progress-pw';
afterAll(cleanupTmpDirs);

let dir: string;
let template: string;
const env = (repo: string) => ({ JBACKUP_REPOSITORY: repo, JBACKUP_PASSWORD: PW, JBACKUP_KDF_PARAMS: '1024,8,1', JBACKUP_PACK_SIZE: '4' });

const packFiles = async (repo: string) => {
  const out: { id: string; file: string; size: number }[] = [];
  for (const d of await fsp.readdir(path.join(repo, 'data'))) {
    for (const f of await fsp.readdir(path.join(repo, 'data', d))) {
      const file = path.join(repo, 'data', d, f);
      out.push({ id: f, file, size: (await fsp.stat(file)).size });
    }
  }
  return out.sort((a, b) => b.size - a.size || a.id.localeCompare(b.id));
};

const copyRepo = async (name: string) => {
  const r = path.join(dir, name);
  await fsp.cp(template, r, { recursive: true });
  return r;
};

beforeAll(async () => {
  dir = await tmpDir('check-progress');
  template = path.join(dir, 'template');
  const src = path.join(dir, 'src');
  await fsp.mkdir(src);
  // 6 data packs of ~4 MiB (random data does not compress) and a tree pack
  for (let i = 0; i < 5; i++) await fsp.writeFile(path.join(src, `f${i}.bin`), prngBytes(`f${i}`, 5_000_000));
  expect((await runJbackup(['init'], { env: env(template) })).code).toBe(0);
  expect((await runJbackup(['snapshot', src], { env: env(template) })).code).toBe(0);
}, 120_000);

describe('check --read-data progress', () => {
  it('--json prints status lines with packs and bytes of the total; the last one is complete', async () => {
    const repo = await copyRepo('json');
    const packs = await packFiles(repo);
    const r = await runJbackup(['--json', 'check', '--read-data'], { env: env(repo) });
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const status = lines.filter((l) => l['message_type'] === 'status');
    expect(status.length).toBeGreaterThanOrEqual(1);
    for (const s of status) {
      for (const k of ['seconds_elapsed', 'percent_done', 'total_packs', 'packs_done', 'total_bytes', 'bytes_done']) expect(typeof s[k], k).toBe('number');
      expect(s['total_packs']).toBe(packs.length);
      expect(s['total_bytes']).toBe(packs.reduce((a, p) => a + p.size, 0));
    }
    const last = status.at(-1)!;
    expect([last['packs_done'], last['bytes_done'], last['percent_done']]).toEqual([packs.length, last['total_bytes'], 1]);
    expect(lines.at(-1)).toMatchObject({ message_type: 'summary', ok: true });
  }, 120_000);

  it.runIf(existsSync('/usr/bin/script'))('on a terminal: a live stderr line with packs, bytes, % and rate', async () => {
    const repo = await copyRepo('tty');
    const packs = await packFiles(repo);
    // script(1) gives the command a pseudo-terminal (stdout and stderr both end up in its output)
    const out = await new Promise<string>((resolve, reject) => {
      const c = spawn('script', ['-qec', `'${process.execPath}' '${JBACKUP_BIN}' check --read-data`, '/dev/null'], { env: { ...process.env, ...env(repo) }, stdio: ['ignore', 'pipe', 'pipe'] });
      let s = '';
      c.stdout.on('data', (d: Buffer) => { s += d.toString(); });
      c.on('error', reject);
      c.on('close', (code) => (code === 0 ? resolve(s) : reject(new Error(`exit ${code}: ${s}`))));
    });
    const n = packs.length;
    expect(out).toMatch(new RegExp(`\\[\\d+:\\d\\d\\] 100\\.00%  ${n} / ${n} packs  [\\d.]+ MiB / [\\d.]+ MiB  [\\d.]+ (B|KiB|MiB|GiB)/s`));
    expect(out).toMatch(/no errors were found/);
  }, 120_000);

  it('renders ETA and rate from the counts (pure)', () => {
    const c = { itemsDone: 5, itemsTotal: 20, bytesDone: 25 * 1024 * 1024, bytesTotal: 100 * 1024 * 1024, errors: 0 };
    expect(itemProgressLine(c, 10, 'packs')).toBe('[0:10] 25.00%  5 / 20 packs  25.000 MiB / 100.000 MiB  2.500 MiB/s  ETA 0:30');
    expect(itemProgressStatus({ ...c, errors: 2 }, 10, { done: 'packs_done', total: 'total_packs' })).toEqual({
      message_type: 'status', seconds_elapsed: 10, seconds_remaining: 30, percent_done: 0.25, total_packs: 20, packs_done: 5, total_bytes: 100 * 1024 * 1024, bytes_done: 25 * 1024 * 1024, error_count: 2,
    });
  });
});

describe('check keeps going', () => {
  it('reports every damaged pack, index file and snapshot in one run, and exits 1', async () => {
    const repo = await copyRepo('damaged');
    const packs = (await packFiles(repo)).slice(0, 4); // four data packs
    for (const p of packs) await fsp.chmod(p.file, 0o600);
    const [flipped, truncated, missing, badHeader] = packs as [typeof packs[0], typeof packs[0], typeof packs[0], typeof packs[0]];
    const fh = await fsp.open(flipped.file, 'r+');
    await fh.write(Buffer.from([0xde, 0xad, 0xbe, 0xef]), 0, 4, 1000);
    await fh.close();
    await fsp.truncate(truncated.file, 100_000);
    await fsp.rm(missing.file);
    const hb = await fsp.open(badHeader.file, 'r+');
    await hb.write(Buffer.from([0xff, 0xff, 0xff, 0x00]), 0, 4, badHeader.size - 4);
    await hb.close();
    // a second (garbage) index file and snapshot file next to the good ones
    const junkId = 'ab'.repeat(32);
    await fsp.writeFile(path.join(repo, 'index', junkId), prngBytes('junk-index', 300));
    await fsp.writeFile(path.join(repo, 'snapshots', junkId), prngBytes('junk-snapshot', 300));

    const r = await runJbackup(['check', '--read-data'], { env: env(repo) });
    expect(r.code).toBe(1);
    const errs = r.stderr.split('\n').filter((l) => l.startsWith('error: '));
    const about = (obj: string) => errs.filter((l) => l.startsWith(`error: ${obj}:`));
    expect(about(`data/${flipped.id}`).join('\n')).toMatch(/Pack ID does not match/);
    expect(about(`data/${truncated.id}`).join('\n')).toMatch(/unexpected file size/);
    expect(about(`data/${missing.id}`).join('\n')).toMatch(/does not exist/);
    expect(about(`data/${badHeader.id}`).join('\n')).toMatch(/pack header cannot be read/);
    expect(about(`index/${junkId}`)).toHaveLength(1);
    expect(about(`snapshots/${junkId}`)).toHaveLength(1);
    expect(r.stderr).toContain(`Fatal: repository contains errors (${errs.length})`);

    // --json: the same problems as error lines and the count in the summary
    const j = await runJbackup(['--json', 'check', '--read-data'], { env: env(repo) });
    expect(j.code).toBe(1);
    const lines = j.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.filter((l) => l['message_type'] === 'error')).toHaveLength(errs.length);
    expect(lines.at(-1)).toEqual({ message_type: 'summary', ok: false, errors: errs.length });
    expect(lines.filter((l) => l['message_type'] === 'status').at(-1)).toMatchObject({ error_count: errs.length });
  }, 120_000);
});
