/**
 * --limit-upload and a profile's [limits] pace a local repository too (the limits decorator that
 * openBackend stacks for every backend). Lower bounds only: load can lengthen a run, never shorten it.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { cleanupTmpDirs, runJbackup } from '../helpers/tools.js';
import { q, sandbox, writeProfiles, type Sandbox } from './util.js';

const PW = 'limits-secret';
let sb: Sandbox;
let src: string;

beforeAll(async () => {
  sb = await sandbox('limits');
  src = path.join(sb.root, 'src');
  mkdirSync(src);
  // 3 MiB that does not compress: at 1 MiB/s with a 1 s burst, at least 2 s of writing
  writeFileSync(path.join(src, 'random'), randomBytes(3 * 1024 * 1024));
  const pwFile = path.join(sb.root, 'pw');
  writeFileSync(pwFile, PW, { mode: 0o600 });
  for (const r of ['flag', 'profile']) {
    expect((await runJbackup(['init', '-r', path.join(sb.root, r)], { env: { ...sb.env, JBACKUP_PASSWORD: PW } })).code).toBe(0);
  }
  writeProfiles(sb, `
[profiles.limited]
repository = ${q(path.join(sb.root, 'profile'))}
password-file = ${q(pwFile)}
sources = [${q(src)}]
[profiles.limited.limits]
upload = 1024
connections = 1
`);
});
afterAll(cleanupTmpDirs);

it('--limit-upload paces a snapshot to a local repository', async () => {
  const t0 = Date.now();
  const r = await runJbackup(['-r', path.join(sb.root, 'flag'), '--limit-upload', '1024', 'snapshot', src], { env: { ...sb.env, JBACKUP_PASSWORD: PW } });
  expect(r.code, r.stderr).toBe(0);
  expect(Date.now() - t0).toBeGreaterThanOrEqual(1900);
});

it('a profile\'s [limits] pace its run to a local repository, which still streams its packs (a pack-tmp file, no whole-pack buffer)', async () => {
  const t0 = Date.now();
  let running = true;
  const run = runJbackup(['run', 'limited'], { env: sb.env }).finally(() => { running = false; });
  // the pack being streamed is a data/xx/pack-tmp-* file for as long as the limit holds its commit back
  const data = path.join(sb.root, 'profile', 'data');
  let streamed = false;
  while (running && !streamed) {
    streamed = readdirSync(data, { recursive: true }).some((f) => String(f).includes('pack-tmp-'));
    if (!streamed) await new Promise((r) => setTimeout(r, 20));
  }
  const r = await run;
  expect(r.code, r.stderr).toBe(0);
  expect(Date.now() - t0).toBeGreaterThanOrEqual(1900);
  expect(streamed).toBe(true);
  const s = JSON.parse(readFileSync(path.join(sb.state, 'status', 'limited.json'), 'utf8')) as { result: string };
  expect(s.result).toBe('success');
});
