/**
 * Extended attributes: saved in the node's extended_attributes as restic 0.14 does (listxattr
 * order, every node but symlinks) and restored; what cannot be restored is an error of the entry.
 * The values are checked with Python's os.getxattr, not with our own addon.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { MemoryBackend } from '../../src/backend/memory.js';
import { Repository } from '../../src/repo/repository.js';
import { Archiver } from '../../src/archiver/archiver.js';
import { Restorer } from '../../src/restorer/restorer.js';
import { restoreXattrs } from '../../src/restorer/xattr.js';
import { decodeTree, encodeTree, type Node } from '../../src/repo/tree.js';
import { sha256hex } from '../../src/repo/ids.js';
import { hasXattr, lgetxattrSync, llistxattrSync, lsetxattrSync } from '../../src/native/native.js';
import { cleanupTmpDirs, runJbackup, tmpDir } from '../helpers/tools.js';

const KDF = { N: 1024, r: 8, p: 1 };
afterAll(cleanupTmpDirs);

const BIN = Buffer.from([0x00, 0xff, 0x01, 0x80, 0x0a, 0x22, 0x5c]);

/** Python's view of a path's attributes: [name, hex value] in listxattr order (no symlink following). */
function pyXattrs(p: string): [string, string][] {
  const r = spawnSync('python3', ['-c', `
import os, sys, json
p = sys.argv[1]
print(json.dumps([[n, os.getxattr(p, n, follow_symlinks=False).hex()] for n in os.listxattr(p, follow_symlinks=False)]))`, p], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python3: ${r.stderr}`);
  return JSON.parse(r.stdout) as [string, string][];
}

/** why user xattrs cannot be tested here, or null */
async function unsupported(dir: string): Promise<string | null> {
  if (!hasXattr) return 'the native addon (with xattr support) is not loaded';
  const probe = path.join(dir, 'probe');
  await fsp.writeFile(probe, '');
  try {
    lsetxattrSync(probe, 'user.probe', Buffer.from('1'));
    return null;
  } catch (e) {
    return `${dir}: the file system does not take user.* extended attributes (${(e as NodeJS.ErrnoException).code})`;
  } finally {
    await fsp.rm(probe);
  }
}

async function childNodes(repo: Repository, tree: string): Promise<Map<string, Node>> {
  return new Map(decodeTree(await repo.loadBlob('tree', tree)).map((n) => [n.name.toString(), n]));
}

describe('extended attributes', () => {
  let dir: string;
  let src: string;
  let skip: string | null = null;

  beforeAll(async () => {
    dir = await tmpDir('xattr');
    skip = await unsupported(dir);
    if (skip) { console.warn(`[xattr] skipping: ${skip}`); return; }
    src = path.join(dir, 'src');
    await fsp.mkdir(path.join(src, 'sub'), { recursive: true });
    await fsp.writeFile(path.join(src, 'a.txt'), 'hello\n');
    await fsp.writeFile(path.join(src, 'ro.txt'), 'read-only\n');
    await fsp.writeFile(path.join(src, 'plain.txt'), 'no attributes\n');
    await fsp.symlink('a.txt', path.join(src, 'link'));
    // not in name order: the node keeps the order listxattr gives
    lsetxattrSync(path.join(src, 'a.txt'), 'user.zz', BIN);
    lsetxattrSync(path.join(src, 'a.txt'), 'user.empty', Buffer.alloc(0));
    lsetxattrSync(path.join(src, 'a.txt'), 'user.aa', Buffer.from('text value'));
    lsetxattrSync(path.join(src, 'ro.txt'), 'user.ro', Buffer.from('kept despite mode 0444'));
    await fsp.chmod(path.join(src, 'ro.txt'), 0o444);
    lsetxattrSync(path.join(src, 'sub'), 'user.dir', Buffer.from('on a directory'));
  });

  it('are saved in listxattr order (not for symlinks, as restic 0.14), restored, and an unchanged re-run adds no tree', async (ctx) => {
    if (skip) ctx.skip();
    const repo = await Repository.init(new MemoryBackend(), Buffer.from('pw'), { kdf: KDF });
    const cwd = process.cwd();
    process.chdir(src);
    const warnings: string[] = [];
    const errors: string[] = [];
    const progress = { warning: (m: string) => warnings.push(m), error: (p: string, e: Error) => errors.push(`${p}: ${e.message}`) };
    let first;
    let second;
    try {
      first = await new Archiver(repo, { targets: ['.'], progress }).run();
      second = await new Archiver(repo, { targets: ['.'], progress }).run();
    } finally {
      process.chdir(cwd);
    }
    expect(warnings).toEqual([]);
    expect(errors).toEqual([]);
    const snap = await repo.loadSnapshot(first.snapshot_id);
    const nodes = await childNodes(repo, snap.tree);
    const listed = llistxattrSync(path.join(src, 'a.txt')).map((b) => b.toString());
    expect(listed.sort()).toEqual(['user.aa', 'user.empty', 'user.zz']);
    expect(nodes.get('a.txt')!.extendedAttributes!.map((a) => a.name)).toEqual(pyXattrs(path.join(src, 'a.txt')).map(([n]) => n));
    const byName = new Map(nodes.get('a.txt')!.extendedAttributes!.map((a) => [a.name, a.value]));
    expect(byName.get('user.zz')).toEqual(BIN);
    expect(byName.get('user.empty')).toEqual(Buffer.alloc(0)); // "" in the JSON, not null
    expect(nodes.get('sub')!.extendedAttributes).toEqual([{ name: 'user.dir', value: Buffer.from('on a directory') }]);
    expect(nodes.get('plain.txt')!.extendedAttributes).toBeUndefined();
    expect(nodes.get('link')!.extendedAttributes).toBeUndefined();
    const json = (await repo.loadBlob('tree', snap.tree)).toString();
    expect(json).toContain(`"extended_attributes":[`);
    expect(json).toContain(`{"name":"user.empty","value":""}`);
    expect(json).toContain(`{"name":"user.zz","value":"${BIN.toString('base64')}"}`);

    // the parent rule is restic's (attributes are read, not compared): nothing changed, nothing new
    expect(second.files_unmodified).toBe(3);
    expect(second.tree_blobs).toBe(0);
    expect(second.data_added).toBe(0);

    const out = path.join(dir, 'out');
    const s = await new Restorer(repo, { target: out }).run(snap.tree);
    expect(s.errors).toBe(0);
    for (const rel of ['a.txt', 'ro.txt', 'sub', 'plain.txt']) {
      expect(pyXattrs(path.join(out, rel)).sort(), rel).toEqual(pyXattrs(path.join(src, rel)).sort());
    }
    expect((await fsp.stat(path.join(out, 'ro.txt'))).mode & 0o777).toBe(0o444);
    expect(pyXattrs(path.join(out, 'link'))).toEqual([]);
  });

  it('a changed attribute makes a new node (setxattr moves ctime, so the file counts as changed)', async (ctx) => {
    if (skip) ctx.skip();
    const work = path.join(dir, 'changed');
    await fsp.mkdir(work);
    await fsp.writeFile(path.join(work, 'f'), 'content');
    lsetxattrSync(path.join(work, 'f'), 'user.v', Buffer.from('1'));
    const repo = await Repository.init(new MemoryBackend(), Buffer.from('pw'), { kdf: KDF });
    const first = await new Archiver(repo, { targets: [work] }).run();
    lsetxattrSync(path.join(work, 'f'), 'user.v', Buffer.from('2'));
    const second = await new Archiver(repo, { targets: [work] }).run();
    expect(second.files_changed).toBe(1);
    expect(second.data_blobs).toBe(0);
    expect(second.tree_blobs).toBeGreaterThan(0);
    const snap = await repo.loadSnapshot(second.snapshot_id);
    let nodes = await childNodes(repo, snap.tree);
    for (const c of work.split('/').filter(Boolean)) nodes = await childNodes(repo, nodes.get(c)!.subtree!);
    expect(nodes.get('f')!.extendedAttributes).toEqual([{ name: 'user.v', value: Buffer.from('2') }]);
    expect(first.snapshot_id).not.toBe(second.snapshot_id);
  });

  it('attributes that cannot be set are one error of the entry naming them; the rest, the mode and the times are still restored', async (ctx) => {
    if (skip) ctx.skip();
    // a namespace the kernel does not know (ENOTSUP), and user.* on a symlink (EPERM on Linux):
    // nodes as another writer might make them (restic 0.15+ also reads a symlink's attributes)
    const repo = await Repository.init(new MemoryBackend(), Buffer.from('pw'), { kdf: KDF });
    const t = '2020-01-02T03:04:05.123456789Z';
    const base = { mtime: t, atime: t, ctime: t, uid: process.getuid!(), gid: process.getgid!() };
    const nodes: Node[] = [
      { ...base, name: Buffer.from('f'), type: 'file', mode: 0o640, content: [], extendedAttributes: [
        { name: 'user.ok', value: Buffer.from('yes') }, { name: 'bogus.ns', value: Buffer.from('x') }, { name: 'user.null', value: null },
      ] },
      { ...base, name: Buffer.from('l'), type: 'symlink', mode: 0o777 | 0x8000000, linktarget: Buffer.from('f'), content: null,
        extendedAttributes: [{ name: 'user.onlink', value: Buffer.from('1') }] },
    ];
    const bytes = encodeTree(nodes);
    const id = sha256hex(bytes);
    await repo.saveBlob('tree', id, bytes);
    await repo.flush();
    const out = path.join(dir, 'out-errors');
    const errors: string[] = [];
    const s = await new Restorer(repo, { target: out, progress: { error: (p, e) => errors.push(`${p}: ${e.message}`) } }).run(id);
    expect(s.errors).toBe(2);
    expect(errors).toEqual([
      `${path.join(out, 'f')}: cannot restore extended attribute bogus.ns: ENOTSUP (Operation not supported)`,
      expect.stringMatching(new RegExp(`^${path.join(out, 'l')}: cannot restore extended attribute user.onlink: EPERM`)),
    ]);
    expect(pyXattrs(path.join(out, 'f')).sort()).toEqual([['user.null', ''], ['user.ok', Buffer.from('yes').toString('hex')]]);
    const st = await fsp.stat(path.join(out, 'f'), { bigint: true });
    expect(Number(st.mode & 0o777n)).toBe(0o640);
    expect(st.mtimeNs).toBe(1577934245123456789n);
  });

  it('restoreXattrs sets through an open file descriptor', async (ctx) => {
    if (skip) ctx.skip();
    const f = path.join(dir, 'by-fd');
    const fh = await fsp.open(f, 'w', 0o400);
    try {
      expect(restoreXattrs({ fd: fh.fd, path: f }, [{ name: 'user.fd', value: BIN }])).toBeNull();
    } finally {
      await fh.close();
    }
    expect(lgetxattrSync(f, 'user.fd')).toEqual(BIN);
    expect(pyXattrs(f)).toEqual([['user.fd', BIN.toString('hex')]]);
  });

  it('without the native addon a backup says once that attributes are not saved, and a restore fails for each entry that has some', async (ctx) => {
    if (skip) ctx.skip();
    const repo = path.join(dir, 'cli-repo');
    const env = { JBACKUP_REPOSITORY: repo, JBACKUP_PASSWORD: 'pw', JBACKUP_KDF_PARAMS: '1024,8,1' };
    expect((await runJbackup(['init'], { env })).code).toBe(0);
    // with the addon: the snapshot has them
    const withAddon = await runJbackup(['snapshot', '.'], { env, cwd: src });
    expect(withAddon.code, withAddon.stderr).toBe(0);
    expect(withAddon.stderr).not.toMatch(/warning/);
    const noAddon = { ...env, JBACKUP_NO_NATIVE: '1' };
    const b = await runJbackup(['snapshot', '--force', '.'], { env: noAddon, cwd: src });
    expect(b.code, b.stderr).toBe(0);
    expect(b.stderr.match(/warning: extended attributes are not saved: the native addon is not loaded/g)?.length).toBe(1);
    const r = await runJbackup(['restore', withAddon.stdout.match(/snapshot ([0-9a-f]{8}) saved/)![1]!, path.join(dir, 'cli-out')], { env: noAddon });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/a\.txt: extended attributes user\.\S+, user\.\S+, user\.\S+ not restored: the native addon is not loaded/);
    expect(r.stderr).toMatch(/There were 3 errors/);
  });
});
