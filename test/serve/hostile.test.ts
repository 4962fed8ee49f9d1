/**
 * A hostile repository served: names with "/", "..", ".", NUL, control bytes and invalid UTF-8,
 * duplicate names, absolute and escaping symlinks, symlink loops, a directory symlink to its own
 * parent. A full walk over HTTP must end, stay inside the
 * snapshot, and never show a byte of the host's files.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Repository } from '../../src/repo/repository.js';
import { LocalBackend } from '../../src/backend/local.js';
import { hostileSnapshot, HOSTILE_PW } from '../helpers/hostile-restore.js';
import { cleanupTmpDirs, tmpDir } from '../helpers/tools.js';
import { startServe, type TestServer } from './helpers.js';

let s: TestServer;
const passwd = readFileSync('/etc/passwd');

beforeAll(async () => {
  const dir = await tmpDir('serve-hostile');
  const repoDir = path.join(dir, 'repo');
  await hostileSnapshot(repoDir, [
    { name: 'a/b', type: 'file', content: Buffer.from('slash') },
    { name: '..', type: 'file', content: Buffer.from('dotdot') },
    { name: '.', type: 'dir', children: [{ name: 'x', type: 'file', content: Buffer.from('in dot') }] },
    { name: Buffer.from([0x61, 0x00, 0x62]), type: 'file', content: Buffer.from('nul') },
    { name: Buffer.from([0x0a, 0xff, 0xfe]), type: 'file', content: Buffer.from('ctl') },
    { name: 'dup', type: 'file', content: Buffer.from('first') },
    { name: 'dup', type: 'file', content: Buffer.from('second') },
    { name: 'etc-passwd', type: 'symlink', target: '/etc/passwd' },
    { name: 'escape', type: 'symlink', target: '../../../../../../etc/passwd' },
    { name: 'proc', type: 'symlink', target: '/proc/self/environ' },
    { name: 'parent', type: 'symlink', target: '..' },
    { name: 'selfdir', type: 'dir', children: [{ name: 'up', type: 'symlink', target: '../selfdir' }, { name: 'loop', type: 'symlink', target: 'loop' }] },
  ]);
  const repo = await Repository.open(new LocalBackend(repoDir), Buffer.from(HOSTILE_PW));
  s = await startServe(repo);
});
afterAll(async () => { await s?.close(); await s?.repo.backend.close(); await cleanupTmpDirs(); });

const go = (href: string, init: RequestInit = {}) => fetch(new URL(href, s.h.url), { ...init, headers: { Authorization: s.auth, ...(init.headers as Record<string, string> ?? {}) } });

it('a recursive walk ends, every href stays below the snapshot, no host file is served', async () => {
  const root = '/snapshots/latest/';
  const seen = new Set<string>();
  const bodies = new Map<string, Buffer>();
  const queue = [root];
  while (queue.length) {
    const href = queue.shift()!;
    if (seen.has(href)) continue;
    seen.add(href);
    expect(seen.size).toBeLessThan(100);
    const xml = await (await go(href, { method: 'PROPFIND', headers: { Depth: '1' } })).text();
    for (const m of xml.matchAll(/<D:response><D:href>([^<]*)<\/D:href>(.*?)<\/D:response>/gs)) {
      const h = m[1]!.replace(/&amp;/g, '&');
      expect(h.startsWith(root)).toBe(true);
      if (h === href) continue;
      if (m[2]!.includes('<D:collection/>')) queue.push(h);
      else {
        const r = await go(h);
        expect(r.status, h).toBe(200);
        bodies.set(decodeURIComponent(h.slice(root.length)), Buffer.from(await r.arrayBuffer()));
      }
    }
  }
  for (const [name, b] of bodies) {
    expect(b.equals(passwd), name).toBe(false);
    expect(b.toString().includes('root:'), name).toBe(false);
  }
  expect(Object.fromEntries([...bodies].map(([k, v]) => [k, v.toString()]))).toEqual({
    'a％2Fb': 'slash',
    '％2E％2E': 'dotdot',
    '％2E/x': 'in dot',
    'a％00b': 'nul',
    '％0A％FF％FE': 'ctl',
    'dup': 'first',
    'etc-passwd': '/etc/passwd',
    'escape': '../../../../../../etc/passwd',
    'proc': '/proc/self/environ',
    'parent': '..',
    'selfdir/up': '../selfdir',
    'selfdir/loop': 'loop',
  });
});

it('the escaped names are the only way in; raw bytes and dot names in the URL are refused', async () => {
  expect((await go('/snapshots/latest/a%EF%BC%852Fb')).status).toBe(200);
  expect(await (await go('/snapshots/latest/%EF%BC%852E/x')).text()).toBe('in dot');
  expect((await go('/snapshots/latest/a%2Fb')).status).toBe(400);
  expect((await go('/snapshots/latest/a%00b')).status).toBe(400);
  expect((await go('/snapshots/latest/%0A%FF%FE')).status).toBe(400);
});
