/**
 * `jbackup serve` over a `jotta:` repository through the loopback Jottacloud emulator: listings, and
 * byte ranges that become ranged `mode=bin` reads of the packs (the emulator's request log shows every
 * pack read carries a Range, none fetches a whole pack).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { startEmulator, type RunningEmulator } from '../../tools/jotta-emulator/index.js';
import { JottaBackend } from '../../src/backend/jottacloud/backend.js';
import { openRepository, closeRepository } from '../../src/ops/repository.js';
import { cleanupTmpDirs, runJbackup, tmpDir } from '../helpers/tools.js';
import { KDF, makeSource, PW, servedPath, startServe, type TestServer } from './helpers.js';

let emu: RunningEmulator;
let s: TestServer;
let files: Record<string, Buffer>;
let base: string;
const lines: string[] = [];
const savedConfigDir = process.env['JBACKUP_CONFIG_DIR'];

beforeAll(async () => {
  const dir = await tmpDir('serve-jotta');
  const cfgDir = path.join(dir, 'config');
  emu = await startEmulator({ stateDir: path.join(dir, 'state'), port: 0, tls: true, seed: 1313, log: (l) => { lines.push(l); } });
  const env = { JBACKUP_CONFIG_DIR: cfgDir, NODE_EXTRA_CA_CERTS: emu.caCert!, JBACKUP_PASSWORD: PW, JBACKUP_KDF_PARAMS: `${KDF.N},${KDF.r},${KDF.p}` };
  process.env['JBACKUP_CONFIG_DIR'] = cfgDir;
  const tokenFile = path.join(dir, 'login-token');
  await fsp.writeFile(tokenFile, `${emu.loginToken}\n`);
  const ok = async (args: string[]) => {
    const r = await runJbackup(args, { env });
    if (r.code !== 0) throw new Error(`jbackup ${args.join(' ')}: ${r.stderr}`);
  };
  await ok(['jotta', 'login', '--token-file', tokenFile, '--api-url', emu.url, '--jfs-url', emu.url]);
  const src = path.join(dir, 'src');
  files = await makeSource(src);
  await ok(['-r', 'jotta:serve/repo', 'init']);
  await ok(['-r', 'jotta:serve/repo', 'snapshot', src]);
  const repo = await openRepository(new JottaBackend('jotta:serve/repo', { ca: emu.caCertPem! }), PW);
  s = await startServe(repo);
  base = `snapshots/latest/${servedPath(src)}`;
});
afterAll(async () => {
  if (s) { await s.close(); await closeRepository(s.repo); }
  await emu?.close();
  if (savedConfigDir === undefined) delete process.env['JBACKUP_CONFIG_DIR']; else process.env['JBACKUP_CONFIG_DIR'] = savedConfigDir;
  await cleanupTmpDirs();
});

const go = (rel: string, init: RequestInit = {}) => fetch(s.url(rel), { ...init, headers: { Authorization: s.auth, ...(init.headers as Record<string, string> ?? {}) } });

it('lists folders and serves files', async () => {
  const xml = await (await go(`${base}/docs/`, { method: 'PROPFIND', headers: { Depth: '1' } })).text();
  expect(xml.match(/<D:response>/g)).toHaveLength(5);
  expect(await (await go(`${base}/docs/readme.md`)).text()).toBe('# read me\n');
});

it('a byte range of a large file is a few ranged mode=bin reads, never a whole pack', async () => {
  const big = files['photos/big.bin']!;
  lines.length = 0;
  const r = await go(`${base}/photos/big.bin`, { headers: { Range: 'bytes=7000000-7000099' } });
  expect(r.status).toBe(206);
  expect(Buffer.from(await r.arrayBuffer()).equals(big.subarray(7_000_000, 7_000_100))).toBe(true);
  const packReads = lines.filter((l) => /^GET /.test(l) && /\/data\/[0-9a-f]{2}\/[0-9a-f]{64}/.test(l));
  expect(packReads.length).toBeGreaterThan(0);
  expect(packReads.length).toBeLessThanOrEqual(2);
  for (const l of packReads) {
    expect(l).toMatch(/mode=bin/);
    const m = /\[bytes=(\d+)-(\d+)\]$/.exec(l);
    expect(m, l).not.toBeNull();
    // one blob (≤ 8 MiB chunk plus its overhead), not a 16 MiB pack
    expect(Number(m![2]) - Number(m![1]) + 1).toBeLessThanOrEqual((8 << 20) + 64);
  }
  // and the whole file streams right
  const all = await go(`${base}/photos/big.bin`);
  expect(Buffer.from(await all.arrayBuffer()).equals(big)).toBe(true);
});
