import { expect, it } from 'vitest';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { randomBytes, createHash } from 'node:crypto';
import { LocalBackend } from '../../src/backend/local.js';
import { MemoryBackend } from '../../src/backend/memory.js';
import { backendConformance } from './conformance.js';
import { afterAll } from 'vitest';
import { cleanupTmpDirs, tmpDir } from '../helpers/tools.js';

afterAll(cleanupTmpDirs);

backendConformance('memory', async () => new MemoryBackend());
backendConformance('local', async () => new LocalBackend(path.join(await tmpDir('local-be'), 'repo')));

it('local backend uses restic\'s layout, read-only files, and ignores temp files', async () => {
  const root = path.join(await tmpDir('local-layout'), 'repo');
  const be = new LocalBackend(root);
  await be.create();
  expect((await fsp.readdir(path.join(root, 'data'))).length).toBe(256);
  const b = randomBytes(10);
  const name = createHash('sha256').update(b).digest('hex');
  await be.save({ type: 'data', name }, b);
  const st = await fsp.stat(path.join(root, 'data', name.slice(0, 2), name));
  expect(st.mode & 0o777).toBe(0o400);
  await fsp.writeFile(path.join(root, 'data', name.slice(0, 2), `${name}-tmp-123`), 'partial');
  expect((await be.list('data')).map((f) => f.name)).toEqual([name]);
});
