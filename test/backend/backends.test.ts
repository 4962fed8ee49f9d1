import { expect, it } from 'vitest';
import type { Backend } from '../../src/backend/backend.js';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { randomBytes, createHash } from 'node:crypto';
import { LocalBackend } from '../../src/backend/local.js';
import { MemoryBackend } from '../../src/backend/memory.js';
import { backendConformance, LOCAL_CAPS } from './conformance.js';
import { ForwardingBackend } from '../../src/backend/decorators/forwarding.js';
import { LimitedBackend, makeLimiters } from '../../src/backend/decorators/limits.js';
import { RetryBackend } from '../../src/backend/decorators/retry.js';
import { afterAll } from 'vitest';
import { cleanupTmpDirs, tmpDir } from '../helpers/tools.js';

afterAll(cleanupTmpDirs);

backendConformance('memory', async () => new MemoryBackend());
/** a new local repository layout in a temp dir */
async function createdLocal(prefix: string): Promise<{ root: string; be: LocalBackend }> {
  const root = path.join(await tmpDir(prefix), 'repo');
  const be = new LocalBackend(root);
  await be.create();
  return { root, be };
}

backendConformance('local', async () => new LocalBackend(path.join(await tmpDir('local-be'), 'repo')), LOCAL_CAPS);

// every decorator, around each backend (limits high enough not to slow the suite, but all in force)
const limits = () => makeLimiters({ upload: 256 * 1024 * 1024, download: 256 * 1024 * 1024, connections: 2 });
const decorators: [string, (b: Backend) => Backend][] = [
  ['forwarding', (b) => new ForwardingBackend(b)],
  ['limits', (b) => new LimitedBackend(b, limits())],
  ['limits without pacing', (b) => new LimitedBackend(b, limits(), { pace: false })],
  ['limits over limits', (b) => new LimitedBackend(new LimitedBackend(b, limits()), makeLimiters({ connections: 1 }))],
  ['retry over limits', (b) => new RetryBackend(new LimitedBackend(b, limits()), { maxAttempts: 3 })],
];
for (const [name, wrap] of decorators) {
  backendConformance(`${name} over memory`, async () => wrap(new MemoryBackend()));
  backendConformance(`${name} over local`, async () => wrap(new LocalBackend(path.join(await tmpDir('deco-be'), 'repo'))), LOCAL_CAPS);
}

it('local backend uses restic\'s layout, read-only files, and ignores temp files', async () => {
  const { root, be } = await createdLocal('local-layout');
  expect((await fsp.readdir(path.join(root, 'data'))).length).toBe(256);
  const b = randomBytes(10);
  const name = createHash('sha256').update(b).digest('hex');
  await be.save({ type: 'data', name }, b);
  const st = await fsp.stat(path.join(root, 'data', name.slice(0, 2), name));
  expect(st.mode & 0o777).toBe(0o400);
  await fsp.writeFile(path.join(root, 'data', name.slice(0, 2), `${name}-tmp-123`), 'partial');
  expect((await be.list('data')).map((f) => f.name)).toEqual([name]);
});

it('local backend: many small parts are written in order, and verifySaved compares the stored bytes with them', async () => {
  const { root, be } = await createdLocal('local-verify');
  // thousands of small parts (as a pack of small blobs arrives) plus big ones, across the 1 MiB stage
  const parts: Buffer[] = [];
  for (let i = 0; i < 3000; i++) parts.push(randomBytes(1 + (i * 37) % 1500));
  parts.splice(1000, 0, randomBytes(600 * 1024));
  parts.push(randomBytes(3 * 1024 * 1024));
  const whole = Buffer.concat(parts);
  const name = createHash('sha256').update(whole).digest('hex');
  const h = { type: 'data' as const, name };
  await be.save(h, parts);
  expect((await be.load(h)).equals(whole)).toBe(true);
  expect(await be.verifySaved(h, parts, whole.length)).toBe(true);
  // a different byte anywhere, a shorter file, a missing file: all false
  const file = path.join(root, 'data', name.slice(0, 2), name);
  await fsp.chmod(file, 0o600);
  const bad = Buffer.from(whole);
  bad[2_500_000] ^= 1;
  await fsp.writeFile(file, bad);
  expect(await be.verifySaved(h, parts, whole.length)).toBe(false);
  await fsp.writeFile(file, whole.subarray(0, whole.length - 1));
  expect(await be.verifySaved(h, parts, whole.length)).toBe(false);
  await fsp.rm(file);
  expect(await be.verifySaved(h, parts, whole.length)).toBe(false);
});

it('local backend: a streamed pack is written by the writer thread, verified on commit, published under its hash, and discarded on abort', async () => {
  const { root, be } = await createdLocal('local-stream');
  const tmpFiles = async () => (await fsp.readdir(path.join(root, 'data'), { recursive: true })).filter((f) => String(f).includes('pack-tmp-'));
  const waitForSize = async (n: number) => {
    for (let i = 0; i < 500; i++) {
      const [t] = await tmpFiles();
      if (t && (await fsp.stat(path.join(root, 'data', String(t)))).size === n) return String(t);
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error('the writer thread did not write');
  };
  try {
    const parts: Buffer[] = [];
    for (let i = 0; i < 2000; i++) parts.push(randomBytes(1 + (i * 53) % 3000));
    parts.push(randomBytes(2 * 1024 * 1024 + 17));
    const whole = Buffer.concat(parts);
    const name = createHash('sha256').update(whole).digest('hex');

    const s = be.createStream('data');
    // some parts handed over (transferred to the thread), some copied
    for (let i = 0; i < parts.length; i += 3) s.write(parts.slice(i, i + 3).map((p) => Buffer.from(p)), i % 2 === 0);
    await s.drained();
    expect(s.size).toBe(whole.length);
    // while it is written, the temp file is not a listed data file
    await waitForSize(whole.length);
    expect(await be.list('data')).toEqual([]);
    expect(await s.commit()).toBe(name);
    expect((await be.load({ type: 'data', name })).equals(whole)).toBe(true);
    expect((await fsp.stat(path.join(root, 'data', name.slice(0, 2), name))).mode & 0o777).toBe(0o400);
    expect(await tmpFiles()).toEqual([]);

    // committing the same content again keeps the existing file
    const again = be.createStream('data');
    again.write([whole]);
    expect(await again.commit()).toBe(name);
    expect((await be.list('data')).map((f) => f.name)).toEqual([name]);

    // stored bytes that differ from the bytes written (changed under us before commit): refused, nothing published
    const bad = be.createStream('data');
    bad.write([Buffer.from('hello '), Buffer.from('world')]);
    const tmp = await waitForSize(11);
    await fsp.writeFile(path.join(root, 'data', tmp), 'hello World');
    const badName = createHash('sha256').update('hello world').digest('hex');
    await expect(bad.commit()).rejects.toThrow(/verification after writing failed/);
    await expect(be.stat({ type: 'data', name: badName })).rejects.toThrow(/does not exist/);
    expect(await tmpFiles()).toEqual([]);

    // abort removes the temp file
    const ab = be.createStream('data');
    ab.write([randomBytes(1000)]);
    await waitForSize(1000);
    await ab.abort();
    expect(await tmpFiles()).toEqual([]); // gone once abort resolves (a process may exit right after)
    // also when the backend is closed at once (the writer thread stops)
    const ab2 = be.createStream('data');
    ab2.write([randomBytes(1000)]);
    await waitForSize(1000);
    const ab3 = be.createStream('data');
    ab3.write([randomBytes(3000)]);
    await Promise.all([ab2.abort(), ab3.abort()]);
    await be.close();
    expect(await tmpFiles()).toEqual([]);
  } finally {
    await be.close();
  }
});

it('local backend: parts in shared memory are written where they are and released only once written (also on abort)', async () => {
  const { be } = await createdLocal('local-shared');
  try {
    // one shared buffer, reused for every write as soon as its write is released (as the chunk
    // workers reuse their read buffers): a release before the write would put other bytes in the pack
    const shared = Buffer.from(new SharedArrayBuffer(1 << 20));
    const expected: Buffer[] = [];
    const s = be.createStream('data');
    let pending = 0;
    for (let i = 0; i < 40; i++) {
      const part = shared.subarray(0, 100_000 + i * 997);
      randomBytes(part.length).copy(part);
      expected.push(Buffer.from(part));
      let released = false;
      pending++;
      const done = new Promise<void>((r) => s.write([Buffer.from('iv'), part], true, () => { released = true; pending--; r(); }));
      expect(released).toBe(false); // not before the thread wrote it
      await done;
      part.fill(0xee); // scribbled over once released
    }
    expect(pending).toBe(0);
    const whole = Buffer.concat(expected.flatMap((e) => [Buffer.from('iv'), e]));
    const name = await s.commit();
    expect(name).toBe(createHash('sha256').update(whole).digest('hex'));
    expect((await be.load({ type: 'data', name })).equals(whole)).toBe(true);

    // parts not in shared memory are released at once; an abort releases what is still queued
    const c = be.createStream('data');
    let plain = false;
    c.write([randomBytes(5000)], false, () => { plain = true; });
    expect(plain).toBe(true);
    const queued: boolean[] = [];
    for (let i = 0; i < 20; i++) c.write([shared.subarray(0, 500_000)], true, () => { queued[i] = true; });
    await c.abort();
    expect(queued.filter(Boolean).length).toBe(20);
  } finally {
    await be.close();
  }
});

it('local backend: removeStaleTemp deletes only old temp files of killed writers', async () => {
  const { root, be } = await createdLocal('local-stale');
  const b = randomBytes(100);
  const name = createHash('sha256').update(b).digest('hex');
  await be.save({ type: 'data', name }, b);
  const old = new Date(Date.now() - 2 * 3600_000);
  const files = {
    oldPack: path.join(root, 'data', 'ab', 'pack-tmp-0123456789ab'),
    oldSave: path.join(root, 'index', `${name}-tmp-aabbcc`),
    freshPack: path.join(root, 'data', 'cd', 'pack-tmp-ba9876543210'),
    oddName: path.join(root, 'data', 'ab', 'notes-tmp-x'),
  };
  for (const f of Object.values(files)) await fsp.writeFile(f, 'partial');
  for (const f of [files.oldPack, files.oldSave, files.oddName]) await fsp.utimes(f, old, old);
  expect(await be.removeStaleTemp(3600_000)).toEqual({ files: 2, bytes: 14 });
  const exists = async (f: string) => fsp.stat(f).then(() => true, () => false);
  expect(await exists(files.oldPack)).toBe(false);
  expect(await exists(files.oldSave)).toBe(false);
  expect(await exists(files.freshPack)).toBe(true);
  expect(await exists(files.oddName)).toBe(true);
  expect((await be.list('data')).map((f) => f.name)).toEqual([name]);
});
