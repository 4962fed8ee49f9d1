/** The one id spelling (src/util/ids.ts) that backends, the index, snapshots and the CLI check. */
import { expect, it } from 'vitest';
import { ID_RE } from '../../src/util/ids.js';
import { decodeSnapshot } from '../../src/repo/snapshot.js';

it('an id is exactly 64 lower-case hex digits', () => {
  expect(ID_RE.test('0123456789abcdef'.repeat(4))).toBe(true);
  expect(ID_RE.test('0123456789ABCDEF'.repeat(4))).toBe(false);
  expect(ID_RE.test('0'.repeat(63))).toBe(false);
  expect(ID_RE.test('0'.repeat(65))).toBe(false);
  expect(ID_RE.test(`${'0'.repeat(64)}\n`)).toBe(false);
});

it('a snapshot whose tree id is not one is refused', () => {
  const snap = (tree: string) => Buffer.from(JSON.stringify({ time: '2024-01-01T00:00:00Z', tree, paths: ['/'] }));
  expect(decodeSnapshot(snap('a'.repeat(64))).tree).toBe('a'.repeat(64));
  expect(() => decodeSnapshot(snap('A'.repeat(64)))).toThrow(/no valid tree id/);
});
