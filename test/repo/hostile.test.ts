/**
 * Hostile repositories, written by an independent restic-format writer (test/helpers/hostile-repo.ts):
 * lying indexes, damaged snapshots, decompression bombs, undecodable locks, absurd key parameters.
 * jbackup must refuse with one line naming the object, lose no data and keep its memory bounded;
 * restic 0.14 runs on the same repository where it has the behaviour, to show it agrees.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HostileRepo, zstdBomb, type HEntry } from '../helpers/hostile-repo.js';
import { cleanupTmpDirs, findTool, JBACKUP_BIN, requireInterop, runJbackup, runRestic, tmpDir, type RunResult } from '../helpers/tools.js';

afterAll(cleanupTmpDirs);

const haveRestic = !!findTool('restic') || requireInterop();
/** 3 GiB of zeros in 96 KiB */
const BOMB = 3 * 2 ** 30;
/** what a bounded jbackup may use while refusing a 3 GiB bomb (it idles at ~100 MB) */
const RSS_LIMIT_KB = 600 * 1024;

async function fresh(name: string): Promise<HostileRepo> {
  return HostileRepo.create(path.join(await tmpDir(`hostile-${name}`), 'repo'));
}

const env = (r: HostileRepo) => ({ JBACKUP_REPOSITORY: r.dir, JBACKUP_PASSWORD: r.password });
const jb = (r: HostileRepo, args: string[]) => runJbackup(args, { env: env(r) });
const restic = (r: HostileRepo, args: string[]) => runRestic(args, { repo: r.dir, password: r.password });

/** run the CLI under /usr/bin/time: its result and peak RSS in KiB */
function jbMeasured(r: HostileRepo, args: string[]): Promise<RunResult & { rssKb: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', 'MAXRSS=%M', process.execPath, JBACKUP_BIN, ...args], {
      env: { ...process.env, ...env(r) }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) => {
      const stderrAll = Buffer.concat(err).toString('utf8');
      const m = /MAXRSS=(\d+)\s*$/.exec(stderrAll);
      const stdoutBuffer = Buffer.concat(out);
      resolve({
        code: code ?? 1, stdout: stdoutBuffer.toString('utf8'), stdoutBuffer,
        stderr: stderrAll.replace(/(Command exited with non-zero status \d+\n)?MAXRSS=\d+\s*$/, ''), rssKb: m ? Number(m[1]) : -1,
      });
    });
  });
}

/** one line, no stack trace */
function oneLine(stderr: string): void {
  expect(stderr).not.toMatch(/\n\s+at /);
  expect(stderr.trim().split('\n').length).toBeLessThanOrEqual(2);
}

async function restoredEquals(r: HostileRepo, snap: string, contents: Record<string, Buffer>): Promise<void> {
  const target = path.join(path.dirname(r.dir), `restore-${randomBytes(4).toString('hex')}`);
  const res = await jb(r, ['restore', snap, '--target', target]);
  expect(res.code, res.stderr).toBe(0);
  for (const [name, want] of Object.entries(contents)) {
    const got = await fsp.readFile(path.join(target, name));
    expect(got.equals(want), name).toBe(true);
  }
}

describe('the hostile writer', () => {
  it('writes repositories that restic and jbackup both accept', async () => {
    const r = await fresh('sane');
    const s = await r.standard();
    const c = await jb(r, ['check', '--read-data']);
    expect(c.code, c.stderr + c.stdout).toBe(0);
    await restoredEquals(r, s.snapshot, s.contents);
    if (haveRestic) expect((await restic(r, ['check', '--read-data'])).code).toBe(0);
  });
});

describe('19: prune with an index that lies', () => {
  it('refuses when an index lists a small pack\'s blobs also under a bigger pack (first), deleting nothing', async () => {
    const r = await fresh('prune-lie');
    const s = await r.standard();
    // a replacement index: pack A also "holds" pack B's blob, after its own two, and comes first
    const endA = s.packA.entries.reduce((a, e) => a + e.length, 0);
    const fake: HEntry = { ...s.packB.entries[0]!, offset: endA };
    await fsp.rm(path.join(r.dir, 'index', s.index));
    await r.writeIndex([{ id: s.packA.id, entries: [...s.packA.entries, fake] }, s.packB, s.treePack]);
    const before = await r.fingerprint();

    const p = await jb(r, ['prune', '--max-unused', '0%']);
    expect(p.code, p.stdout + p.stderr).toBe(1);
    expect(p.stderr).toContain(`pack ${s.packA.id}`);
    expect(p.stderr).toMatch(/does not match its real size/);
    oneLine(p.stderr);
    expect(await r.fingerprint()).toEqual(before);
    const c = await jb(r, ['check']);
    expect(c.code).toBe(1);

    if (haveRestic) {
      const rp = await restic(r, ['prune', '--max-unused', '0%']);
      expect(rp.code).not.toBe(0);
      expect(rp.stderr).toMatch(/does not match/);
      expect(await r.fingerprint()).toEqual(before);
      // the data is all there: an index rebuilt from the pack headers checks and restores
      expect((await restic(r, ['rebuild-index'])).code).toBe(0);
      const rc = await restic(r, ['check', '--read-data']);
      expect(rc.code, rc.stderr).toBe(0);
    } else {
      expect((await jb(r, ['repair', 'index'])).code).toBe(0);
    }
    await restoredEquals(r, s.snapshot, s.contents);
  });

  for (const listed of [true, false]) {
    it(`refuses when the index names a blob in the wrong pack with every size agreeing, deleting nothing (the real copy's pack ${listed ? 'also indexed' : 'in no index'})`, async () => {
      const r = await fresh('prune-swap');
      const s = await r.standard();
      // pack C: a used blob and an unused one exactly as long as pack B's blob; the index says the
      // unused one is pack B's blob, so pack B looks like a duplicate that can go
      const bPlain = s.contents.b!;
      const c1 = r.blob('data', randomBytes(900), { compress: false });
      const u = r.blob('data', randomBytes(bPlain.length), { compress: true });
      const bStored = s.packB.entries[0]!;
      // equal stored lengths (random bytes of equal length: zstd stores both as a raw block)
      expect(u.stored.length).toBe(bStored.length);
      const packC = await r.writePack([c1, u]);
      const lie = packC.entries.map((e) => (e.id === u.id ? { ...e, id: bStored.id, uncompressed_length: bStored.uncompressed_length } : e));
      const tree = HostileRepo.treeJson([
        HostileRepo.fileNode('a', s.packA.entries.map((e) => e.id), s.contents.a!.length),
        HostileRepo.fileNode('b', [bStored.id], bPlain.length),
        HostileRepo.fileNode('c', [c1.id], 900),
      ]);
      const tb = r.blob('tree', tree);
      const tp = await r.writePack([tb]);
      await fsp.rm(path.join(r.dir, 'index', s.index));
      await r.writeIndex([{ id: packC.id, entries: lie }, s.packA, ...(listed ? [s.packB] : []), tp]);
      await r.writeSnapshot(tb.id, { time: '2026-03-01T00:00:00Z' });
      await fsp.rm(path.join(r.dir, 'snapshots', s.snapshot));
      const before = await r.fingerprint();

      const p = await jb(r, ['prune', '--max-unused', '0%']);
      expect(p.code, p.stdout + p.stderr).toBe(1);
      expect(p.stderr).toContain(`data blob ${bStored.id} is in pack ${packC.id}`);
      oneLine(p.stderr);
      expect(await r.fingerprint()).toEqual(before);
    });
  }

  it('refuses when a pack in the index is missing from the repository', async () => {
    const r = await fresh('prune-missing');
    const s = await r.standard();
    // the only copy of file b's data is gone: the index still lists its pack
    const ghost = s.packB.id;
    await fsp.rm(r.packPath(ghost));
    const before = await r.fingerprint();
    const p = await jb(r, ['prune']);
    expect(p.code).toBe(1);
    expect(p.stderr).toContain(`pack ${ghost} is in the index but missing`);
    expect(await r.fingerprint()).toEqual(before);
    if (haveRestic) expect((await restic(r, ['prune'])).code).not.toBe(0);
  });
});

describe('20: check with a lying index', () => {
  it('reports a second index file with made-up entries for an existing pack, with and without --read-data', async () => {
    const r = await fresh('check-lie');
    const s = await r.standard();
    const fakes: HEntry[] = [0, 1].map((i) => ({ type: 'data', id: randomBytes(32).toString('hex'), offset: i * 100, length: 100 }));
    await r.writeIndex([{ id: s.packA.id, entries: fakes }]);
    for (const args of [['check'], ['check', '--read-data']]) {
      const c = await jb(r, args);
      expect(c.code, args.join(' ')).toBe(1);
      expect(c.stdout + c.stderr).toContain(s.packA.id.slice(0, 8));
      expect(c.stdout + c.stderr).toMatch(/index entries overlap/);
      expect(c.stdout + c.stderr).toMatch(/unexpected file size/);
    }
    if (haveRestic) expect((await restic(r, ['check', '--read-data'])).code).toBe(1);
  });

  it('reports an index entry pointing beyond the end of its pack', async () => {
    const r = await fresh('check-beyond');
    const s = await r.standard();
    await fsp.rm(path.join(r.dir, 'index', s.index));
    const last = s.packB.entries[0]!;
    await r.writeIndex([s.packA, { id: s.packB.id, entries: [{ ...last, length: last.length + 4096 }] }, s.treePack]);
    const c = await jb(r, ['check']);
    expect(c.code).toBe(1);
    expect(c.stdout + c.stderr).toMatch(new RegExp(`${s.packB.id.slice(0, 8)}[^\\n]*beyond the pack`));
    if (haveRestic) expect((await restic(r, ['check'])).code).toBe(1);
  });

  it('reports a pack header that lies about its blobs\' lengths (check --read-data)', async () => {
    const r = await fresh('check-header');
    const s = await r.standard();
    const b = r.blob('data', randomBytes(2000), { compress: false });
    const liar = await r.writePack([b], (e) => e.map((x) => ({ ...x, length: x.length + 1000 })));
    await r.writeIndex([liar]);
    const c = await jb(r, ['check', '--read-data']);
    expect(c.code).toBe(1);
    expect(c.stdout + c.stderr).toContain(liar.id.slice(0, 8));
    if (haveRestic) expect((await restic(r, ['check', '--read-data'])).code).toBe(1);
  });
});

describe('siblings: malformed index entries and trees', () => {
  const variants: [string, (e: HEntry) => unknown, RegExp][] = [
    ['a length of -1', (e) => ({ ...e, length: -1 }), /invalid offset 0 or length -1/],
    ['an offset of 2^32', (e) => ({ ...e, offset: 2 ** 32 }), /invalid offset 4294967296/],
    ['an id that is not hex', (e) => ({ ...e, id: 'zz' }), /blob "zz": invalid id/],
    ['a type "both"', (e) => ({ ...e, type: 'both' }), /invalid blob type "both"/],
  ];
  for (const [name, lie, msg] of variants) {
    it(`an index entry with ${name} is refused naming the index file`, async () => {
      const r = await fresh('index-field');
      const s = await r.standard();
      await fsp.rm(path.join(r.dir, 'index', s.index));
      const idx = await r.writeIndex([{ id: s.packA.id, entries: s.packA.entries.map((e, i) => (i === 0 ? lie(e) : e)) as HEntry[] }, s.packB, s.treePack]);
      const l = await jb(r, ['ls', 'latest']);
      expect(l.code).toBe(1);
      expect(l.stderr).toContain(`index/${idx}`);
      expect(l.stderr).toMatch(msg);
      oneLine(l.stderr);
      const c = await jb(r, ['check']);
      expect(c.code).toBe(1);
      expect(c.stdout + c.stderr).toContain(`index/${idx}`);
      const before = await r.fingerprint();
      const p = await jb(r, ['prune']);
      expect(p.code).toBe(1);
      expect(p.stderr).toContain(`index/${idx}`);
      expect(await r.fingerprint()).toEqual(before);
      if (haveRestic) expect((await restic(r, ['check'])).code).not.toBe(0);
    });
  }

  const nodeLies: [string, Record<string, unknown>, RegExp][] = [
    ['a negative mtime', { mtime: '-0001-01-01T00:00:00Z' }, /not an RFC 3339 time: "-0001-01-01T00:00:00Z"/],
    ['a uid of 2^40', { uid: 2 ** 40 }, /uid is not a uint32/],
    ['a mode of -5', { mode: -5 }, /mode is not a uint32/],
  ];
  for (const [name, patch, msg] of nodeLies) {
    it(`a tree node with ${name} is refused naming the tree (restic refuses too)`, async () => {
      const r = await fresh('node-lie');
      const b = r.blob('data', Buffer.from('hello'));
      const p = await r.writePack([b]);
      const tb = r.blob('tree', HostileRepo.treeJson([{ ...HostileRepo.fileNode('f', [b.id], 5), ...patch }]));
      const tp = await r.writePack([tb]);
      await r.writeIndex([p, tp]);
      await r.writeSnapshot(tb.id);
      for (const args of [['ls', '-l', 'latest'], ['restore', 'latest', '--target', path.join(path.dirname(r.dir), 'out')]]) {
        const res = await jb(r, args);
        expect(res.code, args[0]).toBe(1);
        expect(res.stderr).toContain(`tree ${tb.id}`);
        expect(res.stderr).toMatch(msg);
        expect(res.stderr).not.toMatch(/\n\s+at /);
      }
      if (haveRestic) expect((await restic(r, ['restore', 'latest', '--target', path.join(path.dirname(r.dir), 'out-restic')])).code).toBe(1);
    });
  }

  it('a tree that is not JSON is named by ls, restore, check and prune', async () => {
    const r = await fresh('tree-json');
    const tb = r.blob('tree', Buffer.from('{"nodes": [ {"name": 1'));
    const tp = await r.writePack([tb]);
    await r.writeIndex([tp]);
    await r.writeSnapshot(tb.id);
    for (const args of [['ls', 'latest'], ['restore', 'latest', '--target', path.join(path.dirname(r.dir), 'out')], ['check'], ['prune']]) {
      const res = await jb(r, args);
      expect(res.code, args[0]).toBe(1);
      expect(res.stdout + res.stderr, args[0]).toMatch(new RegExp(`tree[ /]${tb.id}`));
      expect(res.stderr).not.toMatch(/\n\s+at /);
    }
    if (haveRestic) expect((await restic(r, ['check'])).code).toBe(1);
  });
});

describe('21: one damaged snapshot file', () => {
  it('is skipped with a warning naming it; the others are listed and used; check and prune refuse', async () => {
    const r = await fresh('snapdamage');
    const s = await r.standard();
    const second = await r.writeSnapshot(s.tree, { time: '2026-02-01T00:00:00Z' });
    const badJson = await r.writeUnpacked('snapshots', '{"time": "x", tree', { compress: true });
    // a file whose content no longer matches its name
    const flipped = randomBytes(32).toString('hex');
    await fsp.writeFile(path.join(r.dir, 'snapshots', flipped), randomBytes(200));

    const l = await jb(r, ['snapshots']);
    expect(l.code, l.stderr).toBe(0);
    expect(l.stdout).toContain(s.snapshot.slice(0, 8));
    expect(l.stdout).toContain(second.slice(0, 8));
    expect(l.stderr).toContain(`could not load snapshot ${badJson.slice(0, 8)}`);
    expect(l.stderr).toContain(`could not load snapshot ${flipped.slice(0, 8)}`);

    expect(l.stderr).toMatch(/could not load snapshot \w{8}: invalid snapshot JSON/);
    await restoredEquals(r, s.snapshot, s.contents);
    await restoredEquals(r, 'latest', s.contents);
    const d = await jb(r, ['dump', 'latest', '/b']);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdoutBuffer.equals(s.contents.b!)).toBe(true);
    const src = path.join(path.dirname(r.dir), 'src');
    await fsp.mkdir(src);
    await fsp.writeFile(path.join(src, 'f'), 'hello');
    const bk = await jb(r, ['snapshot', src]);
    expect(bk.code, bk.stderr).toBe(0);
    const f = await jb(r, ['forget', '--keep-last', '1']);
    expect(f.code, f.stderr).toBe(0);
    // the damaged files are neither kept nor deleted by a policy: still there
    for (const id of [badJson, flipped]) await fsp.access(path.join(r.dir, 'snapshots', id));

    const c = await jb(r, ['check']);
    expect(c.code).toBe(1);
    expect(c.stdout + c.stderr).toContain(badJson.slice(0, 8));
    const before = await r.fingerprint();
    const p = await jb(r, ['prune']);
    expect(p.code).toBe(1);
    expect(p.stderr).toMatch(new RegExp(`snapshot (${badJson}|${flipped}) cannot be loaded`));
    expect(await r.fingerprint()).toEqual(before);

    if (haveRestic) {
      const rs = await restic(r, ['snapshots']);
      expect(rs.code).toBe(0);
      expect(rs.stderr).toContain(`could not load snapshot ${badJson.slice(0, 8)}`);
    }
  });
});

describe('22: decompression bombs are bounded', () => {
  it('a lock that inflates to 3 GiB is skipped (as an undecodable lock) in bounded memory', async () => {
    const r = await fresh('bomb-lock');
    const s = await r.standard();
    await r.writeUnpacked('locks', '', { zstd: zstdBomb(BOMB) });
    const l = await jbMeasured(r, ['snapshots']);
    expect(l.code, l.stderr).toBe(0);
    expect(l.stdout).toContain(s.snapshot.slice(0, 8));
    expect(l.rssKb).toBeGreaterThan(0);
    expect(l.rssKb).toBeLessThan(RSS_LIMIT_KB);
  });

  it('a snapshot that inflates to 3 GiB is reported by id in bounded memory', async () => {
    const r = await fresh('bomb-snap');
    const s = await r.standard();
    const bomb = await r.writeUnpacked('snapshots', '', { zstd: zstdBomb(BOMB, false) });
    const l = await jbMeasured(r, ['snapshots']);
    expect(l.code, l.stderr).toBe(0);
    expect(l.stdout).toContain(s.snapshot.slice(0, 8));
    expect(l.stderr).toContain(`could not load snapshot ${bomb.slice(0, 8)}`);
    expect(l.stderr).toMatch(/decompresses to more than/);
    expect(l.rssKb).toBeLessThan(RSS_LIMIT_KB);
  });

  it('an index file that inflates to 3 GiB fails with its name in bounded memory', async () => {
    const r = await fresh('bomb-index');
    await r.standard();
    const bomb = await r.writeIndex([], { zstd: zstdBomb(BOMB) });
    const c = await jbMeasured(r, ['check']);
    expect(c.code).toBe(1);
    expect(c.stdout + c.stderr).toContain(`index/${bomb}`);
    expect(c.stdout + c.stderr).toMatch(/decompresses to 3221225472 bytes/);
    expect(c.rssKb).toBeLessThan(RSS_LIMIT_KB);
    const l = await jbMeasured(r, ['ls', 'latest']);
    expect(l.code).toBe(1);
    expect(l.stderr).toContain(`index/${bomb}`);
    oneLine(l.stderr);
    expect(l.rssKb).toBeLessThan(RSS_LIMIT_KB);
  });

  for (const claim of ['claims 3 GiB', 'claims 3000 bytes']) {
    it(`a tree blob that inflates to 3 GiB (its index entry ${claim}) fails naming it, in bounded memory`, async () => {
      const r = await fresh('bomb-tree');
      const ulen = claim === 'claims 3 GiB' ? BOMB : 3000;
      const tb = r.blob('tree', Buffer.from('not the tree'), { zstd: zstdBomb(BOMB), uncompressedLength: ulen });
      const tp = await r.writePack([tb]);
      await r.writeIndex([tp]);
      await r.writeSnapshot(tb.id);
      for (const args of [['ls', 'latest'], ['restore', 'latest', '--target', path.join(path.dirname(r.dir), 'out')], ['check', '--read-data']]) {
        const res = await jbMeasured(r, args);
        expect(res.code, args.join(' ')).toBe(1);
        expect(res.stdout + res.stderr).toContain(tb.id.slice(0, 8));
        expect(res.rssKb, args.join(' ')).toBeLessThan(RSS_LIMIT_KB);
      }
    });
  }
});

describe('24: a lock with a garbage time', () => {
  it('blocks nothing, survives unlock, and goes with unlock --remove-all (as in restic)', async () => {
    const r = await fresh('lock-time');
    const s = await r.standard();
    const lock = await r.writeLock({ time: 'garbage', exclusive: true });
    const l = await jb(r, ['snapshots']);
    expect(l.code, l.stderr).toBe(0);
    expect(l.stdout).toContain(s.snapshot.slice(0, 8));
    const src = path.join(path.dirname(r.dir), 'src');
    await fsp.mkdir(src);
    await fsp.writeFile(path.join(src, 'f'), 'x');
    const b = await jb(r, ['snapshot', src]);
    expect(b.code, b.stderr).toBe(0);
    expect((await jb(r, ['unlock'])).code).toBe(0);
    await fsp.access(path.join(r.dir, 'locks', lock));
    if (haveRestic) {
      expect((await restic(r, ['snapshots'])).code).toBe(0);
      expect((await restic(r, ['unlock'])).code).toBe(0);
      await fsp.access(path.join(r.dir, 'locks', lock));
    }
    expect((await jb(r, ['unlock', '--remove-all'])).code).toBe(0);
    await expect(fsp.access(path.join(r.dir, 'locks', lock))).rejects.toThrow();
  });
});

describe('24 (sibling): a lock without a time', () => {
  it('is Go\'s zero time, as in restic: a stale lock that blocks until unlock removes it', async () => {
    const r = await fresh('lock-notime');
    await r.standard();
    const lock = await r.writeUnpacked('locks', { exclusive: true, hostname: 'elsewhere', username: 'h', pid: 1 }, { compress: true });
    const l = await jb(r, ['snapshots']);
    expect(l.code).toBe(11);
    expect(l.stderr).toMatch(/created 0001-01-01T00:00:00Z\) \(stale/);
    if (haveRestic) expect((await restic(r, ['snapshots'])).code).not.toBe(0);
    expect((await jb(r, ['unlock'])).code).toBe(0);
    await expect(fsp.access(path.join(r.dir, 'locks', lock))).rejects.toThrow();
    expect((await jb(r, ['snapshots'])).code).toBe(0);
  });
});

describe('27: damaged config and key files are named', () => {
  const cases: [string, (r: HostileRepo) => Promise<void>, RegExp][] = [
    ['config with broken JSON', (r) => r.writeConfig('{"version" 2, "id": "x"}'), /Fatal: config: invalid JSON/],
    ['config with version 3', (r) => r.writeConfig({ version: 3, id: 'a'.repeat(64), chunker_polynomial: '3da3358b4dc173' }), /Fatal: config: unsupported repository version 3/],
    ['config with a bad chunker polynomial', (r) => r.writeConfig({ version: 2, id: 'a'.repeat(64), chunker_polynomial: 'zz' }), /Fatal: config: invalid chunker polynomial/],
  ];
  for (const [name, damage, msg] of cases) {
    it(name, async () => {
      const r = await fresh('cfg');
      await r.standard();
      await damage(r);
      const res = await jb(r, ['snapshots']);
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(msg);
      oneLine(res.stderr);
      if (haveRestic) expect((await restic(r, ['snapshots'])).code).not.toBe(0);
    });
  }

  const keyCases: [string, (kf: Record<string, unknown>) => unknown, RegExp][] = [
    ['key file with broken JSON', () => '{"kdf": "scrypt", "N" 5}', /invalid key file JSON/],
    ['key file with scrypt N=-5', (kf) => ({ ...kf, N: -5 }), /invalid scrypt parameters N=-5/],
    ['key file with scrypt N=2^40 (a memory bomb)', (kf) => ({ ...kf, N: 2 ** 40 }), /invalid scrypt parameters N=1099511627776/],
    ['key file with scrypt p=2^30 (a time bomb)', (kf) => ({ ...kf, p: 2 ** 30 }), /invalid scrypt parameters/],
  ];
  for (const [name, edit, msg] of keyCases) {
    it(name, async () => {
      const r = await fresh('key');
      await r.standard();
      for (const k of await fsp.readdir(path.join(r.dir, 'keys'))) await fsp.rm(path.join(r.dir, 'keys', k));
      const id = await r.writeKey({ N: 1024, r: 8, p: 1 }, edit);
      const res = await jb(r, ['snapshots']);
      expect(res.code).toBe(1);
      expect(res.stderr).toContain(`keys/${id}`);
      expect(res.stderr).toMatch(msg);
      oneLine(res.stderr);
    });
  }

  it('a file node claiming a size of 2^62 is restored from its content, as restic does', async () => {
    const r = await fresh('node-size');
    const b = r.blob('data', Buffer.from('hello'));
    const p = await r.writePack([b]);
    const big = '4611686018427387904';
    const t = Buffer.from(HostileRepo.treeJson([HostileRepo.fileNode('big', [b.id], 12345), HostileRepo.fileNode('empty', [], 12346)]).toString()
      .replace('12345', big).replace('12346', big));
    const tb = r.blob('tree', t);
    const tp = await r.writePack([tb]);
    await r.writeIndex([p, tp]);
    await r.writeSnapshot(tb.id);
    const target = path.join(path.dirname(r.dir), 'out');
    const res = await jb(r, ['restore', 'latest', '--target', target]);
    expect(await fsp.readFile(path.join(target, 'big'), 'utf8')).toBe('hello');
    // a file without content cannot be given that size: named, with why
    expect(res.stderr).toMatch(/empty: the tree gives this file a size of 4611686018427387904 bytes/);
    expect(res.stderr).not.toMatch(/"len"/);
    expect(res.code).toBe(1);
    if (haveRestic) {
      const rt = path.join(path.dirname(r.dir), 'out-restic');
      const rr = await restic(r, ['restore', 'latest', '--target', rt]);
      // restic fails that file too (and restores the rest)
      expect(rr.code).toBe(1);
      expect(rr.stderr).toMatch(/error for \/empty/);
      expect(await fsp.readFile(path.join(rt, 'big'), 'utf8')).toBe('hello');
    }
  });

  it('a snapshot whose tree is not in the index is reported by check and refused by prune', async () => {
    const r = await fresh('snap-notree');
    await r.standard();
    const ghost = randomBytes(32).toString('hex');
    await r.writeSnapshot(ghost, { time: '2026-05-01T00:00:00Z' });
    const c = await jb(r, ['check']);
    expect(c.code).toBe(1);
    expect(c.stdout + c.stderr).toContain(ghost.slice(0, 8));
    const before = await r.fingerprint();
    const p = await jb(r, ['prune']);
    expect(p.code).toBe(1);
    expect(p.stderr).toContain(ghost);
    expect(await r.fingerprint()).toEqual(before);
    if (haveRestic) expect((await restic(r, ['check'])).code).toBe(1);
  });
});
