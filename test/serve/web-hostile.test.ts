/**
 * The pages over a hostile repository (trees the archiver never writes: "..", names with "/", markup,
 * invalid UTF-8, duplicates, symlinks to "/etc/passwd"): every name renders as text and every link on
 * a folder page leads somewhere inside the snapshot; tar and zip members never climb or start with "/";
 * a symlink's bytes are its target text, never the file it names outside. Also: restic ≥ 0.17's
 * summary size is shown, and a client that leaves in the middle of an archive stops the walk.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import * as http from 'node:http';
import * as path from 'node:path';
import { promises as fsp } from 'node:fs';
import { LocalBackend } from '../../src/backend/local.js';
import { Repository } from '../../src/repo/repository.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tools.js';
import { hostileSnapshot, HOSTILE_PW } from '../helpers/hostile-restore.js';
import { prngBytes } from '../helpers/fstree.js';
import { escapeName } from '../../src/serve/names.js';
import { startHarness, type Harness } from './web-harness.js';

let h: Harness;
let dir: string;
const HTML = { accept: 'text/html' };
const BIG = prngBytes('hostile-big', 12 << 20);

beforeAll(async () => {
  dir = await tmpDir('web-hostile');
  const repo = path.join(dir, 'repo');
  await hostileSnapshot(repo, [
    { name: '..', type: 'dir', children: [{ name: 'x', type: 'file', content: Buffer.from('x\n') }] },
    { name: 'a/b', type: 'file', content: Buffer.from('slash\n') },
    { name: '</td><script>alert(1)</script>', type: 'file', content: Buffer.from('markup\n') },
    { name: Buffer.from([0xff, 0xfe, 0x41]), type: 'file', content: Buffer.from('invalid utf-8\n') },
    { name: 'dup', type: 'file', content: Buffer.from('first\n') },
    { name: 'dup', type: 'file', content: Buffer.from('second\n') },
    { name: 'd', type: 'dir', children: [
      { name: '../../z', type: 'symlink', target: '/etc/passwd' },
      { name: 'up', type: 'symlink', target: '../../../../etc/passwd' },
    ] },
    { name: 'big', type: 'dir', children: [{ name: 'big.bin', type: 'file', content: BIG }] },
    { name: 'many', type: 'dir', children: Array.from({ length: 10_001 }, (_, i) => ({ name: `f${String(i).padStart(5, '0')}`, type: 'file' as const })) },
  ]);
  // a snapshot as restic ≥ 0.17 writes it, with its summary
  const r = await Repository.open(new LocalBackend(repo), Buffer.from(HOSTILE_PW));
  const first = (await r.listSnapshots())[0]!;
  await r.saveSnapshot({ time: new Date(Date.parse(first.time) + 1000).toISOString(), tree: first.tree, paths: ['/summary'], hostname: 'newer-restic', summary: { total_bytes_processed: 123_456_789, total_files_processed: 9 } });
  await r.backend.close();
  h = await startHarness(repo, HOSTILE_PW);
}, 120_000);
afterAll(async () => {
  await h?.close();
  await cleanupTmpDirs();
});

const get = (p: string, headers: Record<string, string> = HTML) => fetch(h.url + p, { headers, redirect: 'manual' });

describe('web pages over a hostile repository', () => {
  it('names render as text; every link on the folder page answers inside the snapshot', async () => {
    const page = await (await get('/hosts/hostile/latest/')).text();
    expect(page).not.toMatch(/<script/i);
    expect(page).toContain('&lt;％2Ftd&gt;&lt;script&gt;alert(1)&lt;％2Fscript&gt;');
    expect(page).toContain('>％2E％2E/<');
    expect(page).toContain('>a％2Fb<');
    expect(page).toContain('>％FF％FEA<');
    expect(page.match(/>dup</g)).toHaveLength(1);
    const links = [...page.matchAll(/<td class="name">.*?<a href="([^"]+)"/g)].map((m) => m[1]!.replace(/&amp;/g, '&'));
    expect(links.length).toBe(8);
    for (const l of links) {
      expect(l, l).toMatch(/^\/(_\/view\/)?hosts\/hostile\/latest\//);
      const r = await get(l);
      expect(r.status, l).toBe(200);
      await r.arrayBuffer();
    }
    expect(await (await get('/_/raw/hosts/hostile/latest/dup', {})).text()).toBe('first\n');
    expect(await (await get('/_/view/hosts/hostile/latest/％2E％2E/x')).text()).toContain('x\n');
  });

  it('symlinks pointing outside are their target text, never the file', async () => {
    for (const [name, target] of [[escapeName('../../z'), '/etc/passwd'], ['up', '../../../../etc/passwd']] as const) {
      const raw = await get(`/_/raw/hosts/hostile/latest/d/${encodeURIComponent(name)}`, {});
      expect(await raw.text()).toBe(target);
      const page = await (await get(`/_/view/hosts/hostile/latest/d/${encodeURIComponent(name)}`)).text();
      expect(page).toContain(`symlink → <span class="mono">${target}</span> (shown as its target text)`);
      expect(page).not.toContain('root:x:0:0');
    }
  });

  it('tar and zip members stay below the archive\'s top directory', async () => {
    const tar = Buffer.from(await (await get('/_/tar/hosts/hostile/latest/', {})).arrayBuffer());
    const t = spawnSync('tar', ['-t'], { input: tar });
    expect(t.status, t.stderr.toString()).toBe(0);
    const members = t.stdout.toString().split('\n').filter(Boolean);
    expect(members.length).toBeGreaterThan(5);
    for (const m of members) {
      expect(m.startsWith('snapshot-'), m).toBe(true);
      expect(m.split('/'), m).not.toContain('..');
    }
    const zipFile = path.join(dir, 'h.zip');
    await fsp.writeFile(zipFile, Buffer.from(await (await get('/_/zip/hosts/hostile/latest/', {})).arrayBuffer()));
    const py = spawnSync('python3', ['-c', 'import zipfile,sys,json; z=zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; print(json.dumps(z.namelist()))', zipFile]);
    expect(py.status, py.stderr.toString()).toBe(0);
    const names = JSON.parse(py.stdout.toString()) as string[];
    for (const n of names) {
      expect(n.startsWith('snapshot-'), n).toBe(true);
      expect(n.split('/'), n).not.toContain('..');
    }
    // names that are not UTF-8 are escaped as the listing shows them
    expect(names.some((n) => n.endsWith('/％FF％FEA'))).toBe(true);
  });

  it('a folder of more than 10,000 entries is paged', async () => {
    const one = await (await get('/hosts/hostile/latest/many/')).text();
    expect(one.match(/<tr><td class="name">/g)).toHaveLength(10_000);
    expect(one).toContain('1–10,000 of 10,001');
    expect(one).toContain('href="?page=2"');
    const two = await (await get('/hosts/hostile/latest/many/?page=2')).text();
    expect(two.match(/<tr><td class="name">/g)).toHaveLength(1);
    expect(two).toContain('>f10000<');
    const rev = await (await get('/hosts/hostile/latest/many/?order=desc&page=2')).text();
    expect(rev).toContain('>f00000<');
    expect(rev).toContain('href="?order=desc&amp;page=1"');
  });

  it('shows restic ≥ 0.17\'s summary size without computing', async () => {
    const page = await (await get('/')).text();
    expect(page).toMatch(/newer-restic[\s\S]*?class="num">118 MiB</);
  });

  it('a client leaving in the middle of a zip stops the walk (no handler left waiting)', async () => {
    await h.idle();
    await new Promise<void>((resolve, reject) => {
      const req = http.get(`${h.url}/_/zip/hosts/hostile/latest/big/`, (res) => {
        res.once('data', () => { req.destroy(); resolve(); });
      });
      req.on('error', (e) => { if (!req.destroyed) reject(e); });
    });
    await h.idle();
    expect(h.logs.filter((l) => l.startsWith('error'))).toEqual([]);
    expect((await get('/')).status).toBe(200);
  });
});

describe('diff page over hostile names', () => {
  it('links each change by its raw names (a name with "/", one that is not UTF-8)', async () => {
    const repo = path.join(dir, 'repo-diff');
    const odd = Buffer.from([0x6f, 0xff, 0x64, 0x64]);
    const a = await hostileSnapshot(repo, [{ name: 'a/b', type: 'file', content: Buffer.from('one\n') }, { name: 'keep', type: 'file', content: Buffer.from('k\n') }]);
    const b = await hostileSnapshot(repo, [
      { name: 'a/b', type: 'file', content: Buffer.from('two\n') },
      { name: 'keep', type: 'file', content: Buffer.from('k\n') },
      { name: odd, type: 'dir', children: [{ name: 'in', type: 'file', content: Buffer.from('inside\n') }] },
    ], false);
    const h2 = await startHarness(repo, HOSTILE_PW);
    try {
      const page = await (await fetch(`${h2.url}/_/diff?a=${a.slice(0, 8)}&b=${b.slice(0, 8)}`)).text();
      const links = [...page.matchAll(/<td class="mono (mod-[a-z]+)">([^<]*)<\/td><td class="name"><a href="([^"]+)">([^<]*)</g)].map((m) => [m[2], m[3]!.replace(/&amp;/g, '&'), m[4]]);
      expect(links.map((l) => [l[0], l[2]])).toEqual([['M', '/a/b'], ['+', '/o\ufffddd/'], ['+', '/o\ufffddd/in']]);
      const bodies = await Promise.all(links.map(async (l) => (await fetch(h2.url + l[1]!, { headers: { accept: 'text/html' } })).text()));
      expect(bodies[0]).toContain('two');
      expect(bodies[1]).toContain('>in<');
      expect(bodies[2]).toContain('inside');
      // the newer snapshot's root page links its changes since the previous one of the same host and paths
      const root = await (await fetch(`${h2.url}/ids/${b.slice(0, 8)}/`, { headers: { accept: 'text/html' } })).text();
      expect(root).toContain(`href="/_/diff?a=${a.slice(0, 8)}&amp;b=${b.slice(0, 8)}"`);
      const older = await (await fetch(`${h2.url}/ids/${a.slice(0, 8)}/`, { headers: { accept: 'text/html' } })).text();
      expect(older).not.toContain('/_/diff?');
    } finally {
      await h2.close();
    }
  });
});
