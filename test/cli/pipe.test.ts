/**
 * A reader that goes away (`jbackup dump … | head`): jbackup ends quietly with restic's 141, no stack
 * trace, and leaves no lock behind (the next command used to fail with exit 11).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { cleanupTmpDirs, JBACKUP_BIN, runJbackup, tmpDir } from '../helpers/tools.js';

let dir: string;
let repo: string;
const env = () => ({ JBACKUP_REPOSITORY: repo, JBACKUP_PASSWORD: 'pw', JBACKUP_KDF_PARAMS: '1024,8,1' });

/** run jbackup, read its first chunk of output, then close the pipe; exit code and stderr */
function closeAfterFirstChunk(args: string[]): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [JBACKUP_BIN, ...args], { env: { ...process.env, ...env() }, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.stdout.once('data', () => child.stdout.destroy());
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stderr: err }));
  });
}

beforeAll(async () => {
  dir = await tmpDir('cli-pipe');
  repo = path.join(dir, 'repo');
  const src = path.join(dir, 'src');
  await fsp.mkdir(src);
  // more output than a pipe holds (64 KiB): the writer is still writing when the reader leaves
  await fsp.writeFile(path.join(src, 'big'), randomBytes(8 << 20));
  for (let d = 0; d < 20; d++) {
    await fsp.mkdir(path.join(src, `d${d}`));
    await Promise.all(Array.from({ length: 200 }, (_, i) => fsp.writeFile(path.join(src, `d${d}`, `file-with-a-long-name-${i}`), `${d}/${i}`)));
  }
  expect((await runJbackup(['init'], { env: env() })).code).toBe(0);
  expect((await runJbackup(['backup', '-q', src], { env: env() })).code).toBe(0);
  // a few snapshots for the listing
  for (let i = 0; i < 3; i++) expect((await runJbackup(['backup', '-q', '--tag', `t${i}`, src], { env: env() })).code).toBe(0);
});
afterAll(cleanupTmpDirs);

describe('closed output pipe', () => {
  const cases = () => [
    ['dump', 'latest', path.join(dir, 'src', 'big')],
    ['ls', 'latest'],
    ['find', 'file-*'],
    ['--json', 'ls', 'latest'],
  ];
  it('dump, ls, find, ls --json: exit 141, no stack trace, no lock left', async () => {
    for (const args of cases()) {
      const r = await closeAfterFirstChunk(args);
      expect({ args, code: r.code, stderr: r.stderr }).toEqual({ args, code: 141, stderr: '' });
      expect(await fsp.readdir(path.join(repo, 'locks'))).toEqual([]);
    }
    // and the next command is not held up by a stale lock
    const next = await runJbackup(['prune', '--dry-run'], { env: env() });
    expect(next.code).toBe(0);
  });
  it('cat of a pack-sized blob', async () => {
    const blobs: { id: string; type: string; length: number }[] = [];
    for (const name of await fsp.readdir(path.join(repo, 'index'))) {
      const idx = JSON.parse((await runJbackup(['cat', 'index', name], { env: env() })).stdout) as { packs: { blobs: { id: string; type: string; length: number }[] }[] };
      blobs.push(...idx.packs.flatMap((p) => p.blobs));
    }
    const blob = blobs.filter((b) => b.type === 'data').sort((a, b) => b.length - a.length)[0]!;
    expect(blob.length).toBeGreaterThan(256 * 1024);
    const r = await closeAfterFirstChunk(['cat', 'blob', blob.id]);
    expect(r.code).toBe(141);
    expect(r.stderr).toBe('');
    expect(await fsp.readdir(path.join(repo, 'locks'))).toEqual([]);
  });
});
