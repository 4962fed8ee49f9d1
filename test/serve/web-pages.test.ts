/**
 * The browser pages over loopback HTTP (web-harness: the web layer without auth/WebDAV): every name
 * escaped, safety headers, previews by kind, raw bytes never served as active content, downloads by
 * RFC 6266, tar and zip of a folder equal to the source (GNU tar, Info-ZIP unzip), find and diff.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { cleanupTmpDirs, tmpDir } from '../helpers/tools.js';
import { startHarness, type Harness } from './web-harness.js';
import { HOSTILE, makeFixture, NON_UTF8, PNG, PW, type Fixture } from './web-fixture.js';

let fx: Fixture;
let h: Harness;
const HTML = { accept: 'text/html,application/xhtml+xml' };

beforeAll(async () => {
  fx = await makeFixture();
  h = await startHarness(fx.repo, PW);
}, 120_000);
afterAll(async () => {
  await h?.close();
  await cleanupTmpDirs();
});

const get = (p: string, headers: Record<string, string> = HTML) => fetch(h.url + p, { headers, redirect: 'manual' });
const text = async (p: string) => {
  const r = await get(p);
  expect(r.status, p).toBe(200);
  return r.text();
};
/** the href of the first link whose text contains `label` */
function hrefOf(page: string, label: string): string {
  for (const m of page.matchAll(/<a [^>]*href="([^"]*)"[^>]*>([^<]*)</g)) if (m[2]!.includes(label)) return m[1]!.replace(/&amp;/g, '&');
  throw new Error(`no link "${label}"`);
}
const second = () => `/ids/${fx.second.slice(0, 8)}/`;

describe('web pages', () => {
  it('the snapshots table: both snapshots newest first, host/tag filters, safety headers', async () => {
    const r = await get('/');
    expect(r.headers.get('content-security-policy')).toContain("script-src 'none'");
    expect(r.headers.get('x-content-type-options')).toBe('nosniff');
    expect(r.headers.get('referrer-policy')).toBe('no-referrer');
    const page = await r.text();
    expect(page.indexOf(fx.second.slice(0, 8))).toBeLessThan(page.indexOf(fx.first.slice(0, 8)));
    expect(page).toContain('laptop');
    expect(page).toContain('weekly');
    expect(page).not.toMatch(/<script/i);
    const f = await text('/?tag=daily');
    expect(f).toContain(fx.first.slice(0, 8));
    expect(f).not.toContain(`>${fx.second.slice(0, 8)}<`);
    const hf = await text('/?host=desktop');
    expect(hf).toContain(`>${fx.second.slice(0, 8)}<`);
    expect(hf).not.toContain(`>${fx.first.slice(0, 8)}<`);
  });

  it('size on request: — links to a computation, then the table shows it', async () => {
    const r = await get(`/_/size/${fx.second.slice(0, 8)}`);
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('/');
    const page = await text('/');
    expect(page).toMatch(/class="num">3\.\d MiB</);
  });

  it('a folder: folders first, names sorted as people do, every name escaped, links percent-encoded', async () => {
    const page = await text(`${second()}notes/`);
    expect(page).not.toContain('<img src=x');
    expect(page).not.toMatch(/<script>alert/);
    expect(page).toContain('&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;&lt;script&gt;alert(2)&lt;\\script&gt;.txt');
    expect(page).toContain('bad％FF.txt');
    expect(page).toContain('→ ../photos');
    // the hostile name's link: percent-encoded, and it leads to its file page
    const href = hrefOf(page, 'onerror');
    expect(href).toMatch(/^\/_\/view\/ids\/[0-9a-f]{8}\/notes\/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E%22%27%26%3Cscript%3Ealert%282%29%3C%5Cscript%3E\.txt$/);
    const fp = await text(href);
    expect(fp).toContain('hostile name');
    const photos = await text(`${second()}photos/`);
    expect(photos.indexOf('2024/')).toBeLessThan(photos.indexOf('9 first.txt'));
    expect(photos.indexOf('9 first.txt')).toBeLessThan(photos.indexOf('10 later.txt'));
    // sorted by size (largest first), by time, and back
    const bySize = await text(`${second()}photos/2024/?sort=size`);
    expect(bySize.indexOf('big.bin')).toBeLessThan(bySize.indexOf('red.png'));
    expect(bySize.indexOf('red.png')).toBeLessThan(bySize.indexOf('empty.dat'));
    expect(bySize).toContain('aria-sort="descending"><a href="?sort=size&amp;order=asc">Size ↓</a>');
    const asc = await text(`${second()}photos/2024/?sort=size&order=asc`);
    expect(asc.indexOf('empty.dat')).toBeLessThan(asc.indexOf('big.bin'));
    // layout folders render too
    expect(await text('/snapshots/')).toContain('latest/');
    expect(await text('/hosts/')).toContain('laptop/');
  });

  it('file pages: UTF-8 text escaped, Latin-1 said so, binary as hex, images by <img>', async () => {
    const t = await text(`/_/view${second()}notes/readme.txt`);
    expect(t).toContain('revised');
    const f = await text(`/_/view/ids/${fx.first.slice(0, 8)}/notes/readme.txt`);
    expect(f).toContain('naïve café &lt;b&gt;not bold&lt;/b&gt; &amp; friends');
    expect(await text(`/_/view${second()}notes/latin1.txt`)).toMatch(/Latin-1[\s\S]*café crème brûlée/);
    const bin = await text(`/_/view${second()}photos/2024/big.bin`);
    expect(bin).toContain('Binary: the first 512 bytes');
    expect(bin).toMatch(/00000000 {2}[0-9a-f]{2} /);
    const img = await text(`/_/view${second()}photos/2024/red.png`);
    expect(img).toContain(`<img class="preview-img" src="/_/raw${second()}photos/2024/red.png"`);
    const html = await text(`/_/view${second()}notes/page.html`);
    expect(html).toContain('&lt;script&gt;document.title=&quot;pwned&quot;&lt;/script&gt;');
    expect(await text(`/_/view${second()}photos/2024/empty.dat`)).toContain('This file is empty.');
    // a symlink to a file is that file; the page says it is a link
    expect(await text(`/_/view${second()}notes/link-to-readme`)).toMatch(/symlink → <span class="mono">readme.txt/);
  });

  it('raw bytes: images inline, HTML/SVG never as active content, everything sandboxed', async () => {
    const png = await get(`/_/raw${second()}photos/2024/red.png`, {});
    expect(png.headers.get('content-type')).toBe('image/png');
    expect(png.headers.get('content-disposition')).toMatch(/^inline;/);
    expect(Buffer.from(await png.arrayBuffer())).toEqual(PNG);
    for (const name of ['page.html', 'evil.svg']) {
      const r = await get(`/_/raw${second()}notes/${name}`, {});
      expect(r.headers.get('content-disposition'), name).toMatch(/^attachment;/);
      expect(r.headers.get('content-security-policy'), name).toMatch(/^sandbox;/);
      expect(r.headers.get('x-content-type-options')).toBe('nosniff');
      await r.arrayBuffer();
    }
    const txt = await get(`/_/raw${second()}notes/readme.txt`, {});
    expect(txt.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await txt.text()).toBe('revised\n');
  });

  it('download: attachment with RFC 6266 filename*, the exact bytes', async () => {
    const r = await get(`/_/download${second()}notes/${encodeURIComponent('bad％FF.txt')}`, {});
    expect(r.status).toBe(200);
    expect(r.headers.get('content-disposition')).toBe(`attachment; filename="bad_FF.txt"; filename*=UTF-8''bad%EF%BC%85FF.txt`);
    expect(await r.text()).toBe('not utf-8 name\n');
    const big = await get(`/_/download${second()}photos/2024/big.bin`, {});
    const bb = Buffer.from(await big.arrayBuffer());
    expect(bb.equals(await fsp.readFile(path.join(fx.src, 'photos/2024/big.bin')))).toBe(true);
  });

  it('a folder as .tar and .zip: extracted, equal to the source (symlinks as symlinks)', async () => {
    const out = await tmpDir('web-archives');
    const tar = await get(`/_/tar${second()}notes/`, {});
    expect(tar.headers.get('content-type')).toBe('application/x-tar');
    expect(tar.headers.get('content-disposition')).toBe(`attachment; filename="notes.tar"; filename*=UTF-8''notes.tar`);
    await fsp.writeFile(path.join(out, 'n.tar'), Buffer.from(await tar.arrayBuffer()));
    await fsp.mkdir(path.join(out, 't'));
    const x = spawnSync('tar', ['-x', '-f', path.join(out, 'n.tar'), '-C', path.join(out, 't')]);
    expect(x.status, x.stderr.toString()).toBe(0);
    const d = spawnSync('diff', ['-r', '--no-dereference', path.join(fx.src, 'notes'), path.join(out, 't', 'notes')]);
    expect(d.status, d.stdout.toString()).toBe(0);

    const zip = await get(`/_/zip${second()}`, {});
    expect(zip.headers.get('content-disposition')).toBe(`attachment; filename="snapshot-${fx.second.slice(0, 8)}.zip"; filename*=UTF-8''snapshot-${fx.second.slice(0, 8)}.zip`);
    await fsp.writeFile(path.join(out, 's.zip'), Buffer.from(await zip.arrayBuffer()));
    const t = spawnSync('unzip', ['-t', path.join(out, 's.zip')]);
    expect(t.status, t.stdout.toString()).toBe(0);
    const z = spawnSync('unzip', ['-q', path.join(out, 's.zip'), '-d', path.join(out, 'z')]);
    expect(z.status, z.stderr.toString()).toBe(0);
    // zip names are UTF-8: the non-UTF-8 name arrives escaped as the listing shows it
    const top = path.join(out, 'z', `snapshot-${fx.second.slice(0, 8)}`);
    await fsp.rename(path.join(top, 'notes', 'bad％FF.txt'), Buffer.concat([Buffer.from(`${top}/notes/`), NON_UTF8]) as unknown as string);
    const dz = spawnSync('diff', ['-r', '--no-dereference', fx.src, top]);
    expect(dz.status, dz.stdout.toString()).toBe(0);
    expect(h.logs.filter((l) => l.startsWith('error'))).toEqual([]);
  });

  it('find: restic patterns over all snapshots, links that open the match', async () => {
    const page = await text('/_/find?pattern=*.txt&i=1');
    expect(page).toMatch(/\d+ matches in 2 snapshots/);
    expect(page).toContain('/gone.txt');
    const href = hrefOf(page, '/new.txt');
    expect(await text(href)).toContain('added in the second snapshot');
    const one = await text(`/_/find?pattern=gone.txt&snapshot=${fx.second.slice(0, 8)}`);
    expect(one).toContain('Nothing matches');
    expect((await get('/_/find?pattern=x&snapshot=zzzz')).status).toBe(404);
    expect(await text(`/_/find?pattern=${encodeURIComponent(HOSTILE.slice(0, 12))}*`)).toContain('2 matches in 2 snapshots');
  });

  it('diff: restic diff\'s changes and statistics between two snapshots', async () => {
    const page = await text(`/_/diff?a=${fx.first.slice(0, 8)}&b=${fx.second.slice(0, 8)}`);
    expect(page).toMatch(/mod-plus">\+<\/td><td class="name"><a href="[^"]*">\/new.txt</);
    expect(page).toMatch(/mod-minus">-<\/td><td class="name"><a href="[^"]*">\/gone.txt</);
    expect(page).toMatch(/mod-change">M<\/td><td class="name"><a href="[^"]*">\/notes\/readme.txt</);
    expect(page).toMatch(/<dt>Files changed<\/dt><dd>1<\/dd>/);
    expect(await text(hrefOf(page, '/gone.txt'))).toContain('removed in the second snapshot');
  });
});
