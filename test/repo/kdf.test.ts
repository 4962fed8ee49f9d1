import { describe, expect, it } from 'vitest';
import { scryptSync } from 'node:crypto';
import { scrypt, scryptEarly } from '../../src/repo/kdf.js';

const K = { N: 1024, r: 8, p: 2 };

describe('key derivation with an early start', () => {
  it('an early derivation is taken once by the matching call; other inputs derive afresh', async () => {
    const salt = Buffer.alloc(64, 7);
    const want = scryptSync('pw', salt, 64, K);
    scryptEarly(Buffer.from('pw'), salt, K);
    scryptEarly(Buffer.from('other'), salt, K);
    expect((await scrypt(Buffer.from('pw'), salt, K)).equals(want)).toBe(true);
    // taken once, then derived again (same result)
    expect((await scrypt(Buffer.from('pw'), salt, K)).equals(want)).toBe(true);
    expect((await scrypt(Buffer.from('pw'), salt, { ...K, p: 1 })).equals(scryptSync('pw', salt, 64, { ...K, p: 1 }))).toBe(true);
    expect((await scrypt(Buffer.from('pw'), Buffer.alloc(64, 8), K)).equals(want)).toBe(false);
  });
});
