/**
 * The web page end to end in Debian's headless chromium (playwright-core, no browser download):
 * `jbackup serve --json` on a test repository, log in with browserUrl (token → cookie), the snapshots
 * table, a folder, a file downloaded, the folder downloaded as .tar and .zip — bytes checked against
 * the source; a name that is HTML renders as text and nothing in the repository runs script.
 * Skipped with a note without chromium; fails under JBACKUP_REQUIRE_INTEROP=1.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { cleanupTmpDirs, tmpDir } from '../helpers/tools.js';
import { chromiumOrSkip, launchChromium, startServe, type Served } from './web-browser-helpers.js';
import { HOSTILE, makeFixture, NON_UTF8, type Fixture } from './web-fixture.js';

const RUN = chromiumOrSkip('web page in chromium');

let fx: Fixture;
let served: Served;
let browser: BrowserContext;
let page: Page;
const dialogs: string[] = [];
const pageErrors: string[] = [];

beforeAll(async () => {
  if (!RUN) return;
  fx = await makeFixture();
  served = await startServe(fx.env);
  browser = await launchChromium();
  page = await browser.newPage();
  page.on('dialog', (d) => { dialogs.push(d.message()); void d.dismiss(); });
  page.on('pageerror', (e) => pageErrors.push(e.message));
}, 180_000);

afterAll(async () => {
  await browser?.close();
  if (served) expect(await served.stop()).toBe(0);
  await cleanupTmpDirs();
});

async function download(click: () => Promise<void>): Promise<{ name: string; bytes: Buffer }> {
  const [d] = await Promise.all([page.waitForEvent('download'), click()]);
  const p = await d.path();
  return { name: d.suggestedFilename(), bytes: await fsp.readFile(p) };
}

describe.runIf(RUN)('web page in headless chromium', () => {
  it('logs in by browserUrl and lists the snapshots', async () => {
    // without the token or cookie: 401
    const r = await fetch(served.url, { headers: { accept: 'text/html' } });
    expect(r.status).toBe(401);
    await page.goto(served.browserUrl);
    expect(new URL(page.url()).search).toBe('');
    expect(await page.title()).toBe('Snapshots · jbackup');
    const rows = page.locator('tbody tr');
    expect(await rows.count()).toBe(2);
    expect(await rows.nth(0).innerText()).toContain(fx.second.slice(0, 8));
    expect(await rows.nth(1).innerText()).toContain(fx.first.slice(0, 8));
    expect(await rows.nth(1).innerText()).toMatch(/laptop[\s\S]*daily/);
  });

  it('opens a folder; the HTML-like name is text, nothing runs', async () => {
    await page.locator('tbody tr').nth(0).locator('td.time a').click();
    await page.getByRole('link', { name: 'notes/', exact: true }).click();
    expect(page.url()).toMatch(/\/notes\/$/);
    const names = await page.locator('td.name a').allInnerTexts();
    expect(names).toContain(HOSTILE);
    expect(names).toContain('bad％FF.txt');
    // folders first: link-to-photos is a link shown as a file, readme.txt a file
    expect(await page.locator('script').count()).toBe(0);
    expect(await page.locator('td.name img[src="x"]').count()).toBe(0);
    await page.getByRole('link', { name: HOSTILE, exact: true }).click();
    expect(await page.locator('h1').innerText()).toBe(HOSTILE);
    expect(await page.locator('pre.preview').innerText()).toBe('hostile name\n');
    // active content from the repository: the HTML is shown as text, the SVG as an image (no script)
    await page.goBack();
    await page.getByRole('link', { name: 'evil.svg', exact: true }).click();
    await page.waitForFunction(() => (document.querySelector('img.preview-img') as HTMLImageElement | null)?.complete === true);
    expect(await page.locator('img.preview-img').evaluate((i: HTMLImageElement) => i.naturalWidth)).toBe(10);
    await page.goBack();
    await page.getByRole('link', { name: 'page.html', exact: true }).click();
    expect(await page.locator('pre.preview').innerText()).toContain('<script>document.title="pwned"</script>');
    expect(await page.title()).not.toBe('pwned');
    expect(dialogs).toEqual([]);
    expect(pageErrors).toEqual([]);
  });

  it('downloads a file: the exact bytes, the name from Content-Disposition', async () => {
    await page.goBack();
    await page.getByRole('link', { name: 'bad％FF.txt', exact: true }).click();
    const d = await download(() => page.getByRole('link', { name: 'Download', exact: true }).click());
    expect(d.name).toBe('bad％FF.txt');
    expect(d.bytes.equals(await fsp.readFile(Buffer.concat([Buffer.from(`${fx.src}/notes/`), NON_UTF8])))).toBe(true);
    // a multi-blob binary file
    await page.goto(`${served.url}ids/${fx.second.slice(0, 8)}/photos/2024/`);
    await page.getByRole('link', { name: 'big.bin', exact: true }).click();
    const b = await download(() => page.getByRole('link', { name: 'Download', exact: true }).click());
    expect(b.bytes.equals(await fsp.readFile(path.join(fx.src, 'photos/2024/big.bin')))).toBe(true);
  });

  it('downloads a folder as .tar and as .zip: extracted, equal to the source', async () => {
    await page.goto(`${served.url}ids/${fx.second.slice(0, 8)}/photos/`);
    const out = await tmpDir('web-browser-dl');
    const tar = await download(() => page.getByRole('link', { name: 'Download .tar' }).click());
    expect(tar.name).toBe('photos.tar');
    await fsp.writeFile(path.join(out, 'photos.tar'), tar.bytes);
    await fsp.mkdir(path.join(out, 't'));
    const x = spawnSync('tar', ['-x', '-f', path.join(out, 'photos.tar'), '-C', path.join(out, 't')]);
    expect(x.status, x.stderr.toString()).toBe(0);
    const dt = spawnSync('diff', ['-r', '--no-dereference', path.join(fx.src, 'photos'), path.join(out, 't', 'photos')]);
    expect(dt.status, dt.stdout.toString()).toBe(0);

    const zip = await download(() => page.getByRole('link', { name: 'Download .zip' }).click());
    expect(zip.name).toBe('photos.zip');
    await fsp.writeFile(path.join(out, 'photos.zip'), zip.bytes);
    const z = spawnSync('unzip', ['-q', path.join(out, 'photos.zip'), '-d', path.join(out, 'z')]);
    expect(z.status, z.stderr.toString()).toBe(0);
    const dz = spawnSync('diff', ['-r', '--no-dereference', path.join(fx.src, 'photos'), path.join(out, 'z', 'photos')]);
    expect(dz.status, dz.stdout.toString()).toBe(0);
  });

  it('find and compare pages work from their forms', async () => {
    await page.goto(`${served.url}_/find`);
    await page.locator('input[name="pattern"]').fill('*.png');
    await page.getByRole('button', { name: 'Find' }).click();
    expect(await page.locator('tbody tr').count()).toBe(2);
    await page.goto(`${served.url}_/diff`);
    await page.getByRole('button', { name: 'Compare' }).click();
    const mods = await page.locator('tbody tr').allInnerTexts();
    expect(mods.map((m) => m.replace(/\s+/g, ' ').trim())).toEqual(expect.arrayContaining(['+ /new.txt', '- /gone.txt', 'M /notes/readme.txt']));
  });
});
