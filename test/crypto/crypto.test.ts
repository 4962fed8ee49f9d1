import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { createCipheriv, randomBytes } from 'node:crypto';
import { poly1305 } from '@noble/ciphers/_poly1305.js';
import { ctr } from '@noble/ciphers/aes.js';
import { nativeAesCtr } from '../../src/native/native.js';
import { clampR, keyFromKdf, makeMasterKey, masterKeyFromJSON, open, poly1305Aes, seal } from '../../src/crypto/crypto.js';
import { openKeyFile, scrypt, createKeyFile, WrongPasswordError } from '../../src/repo/keys.js';
import { decodeConfig } from '../../src/repo/config.js';
import { decodeHeader, parsePackTail } from '../../src/repo/pack.js';
import { decodeUnpacked } from '../../src/repo/unpacked.js';
import { decodeIndex } from '../../src/repo/index.js';
import { decodeSnapshot } from '../../src/repo/snapshot.js';
import { decodeTree, encodeTree } from '../../src/repo/tree.js';
import { sha256hex } from '../../src/repo/ids.js';
import { zstdDecompress } from '../../src/repo/zstd.js';

const V = JSON.parse(readFileSync(new URL('../../../shared/reference/restic-format-vectors.json', import.meta.url), 'utf8')) as {
  password: string; scrypt_output_hex: string; keyfile: string; keyfile_name: string; masterkey_json: string;
  config_plaintext: string; config_file_hex: string;
  data_pack: { id: string; hex: string; header_plain_hex: string };
  tree_pack: { id: string; hex: string; header_plain_hex: string; tree_json: string; tree_id: string };
  index: { name: string; plaintext_json: string; file_hex: string };
  snapshot: { name: string; plaintext_json: string; file_hex: string };
};
const hex = (s: string) => Buffer.from(s.replace(/\s/g, ''), 'hex');

describe('restic crypto vector (crypto_int_test.go)', () => {
  const key = makeMasterKey(
    hex('303e8687b1d7db18421bdc6bb8588ccadac4d59ee87b8ff70c44e635790cafef'),
    hex('ef4d8824cb80b2bcc5fbff8a9b12a42c'),
    hex('cc8d4b948ee0ebfe1d415de921d10353'),
  );
  const stored = hex('69fb41c62d12def4593bd717571386 06338f621aeaeb39da0fe4f99233f8037a54ea 63338a813bcf3f75d8c3cc75dddf8750');

  it('opens the stored object (r is clamped on load)', () => {
    expect(open(key, stored).toString()).toBe('Dies ist ein Test!');
  });

  it('rejects a flipped bit anywhere', () => {
    for (const i of [0, 16, 33, 49]) {
      const bad = Buffer.from(stored);
      bad[i]! ^= 1;
      expect(() => open(key, bad)).toThrow(/verification failed|nonce/);
    }
  });

  it('re-seals with the same IV to the same bytes', () => {
    expect(seal(key, Buffer.from('Dies ist ein Test!'), stored.subarray(0, 16)).equals(stored)).toBe(true);
  });

  it('refuses an all-zero IV', () => {
    expect(() => seal(key, Buffer.from('x'), Buffer.alloc(16))).toThrow(/nonce/);
  });
});

describe('fast path vs @noble (the audited reference)', () => {
  it('Poly1305-AES (sodium) equals noble poly1305 for random keys and lengths', () => {
    for (let i = 0; i < 200; i++) {
      const key = makeMasterKey(randomBytes(32), randomBytes(16), randomBytes(16));
      const iv = randomBytes(16);
      const msg = randomBytes(i * 37 % 5000);
      const c = createCipheriv('aes-128-ecb', key.macK, null);
      c.setAutoPadding(false);
      const s = Buffer.concat([c.update(iv), c.final()]);
      const want = Buffer.from(poly1305(msg, Buffer.concat([key.macR, s])));
      expect(poly1305Aes(key, iv, msg).equals(want)).toBe(true);
    }
  });

  it('AES-256-CTR (node) equals noble ctr, including a 128-bit counter carry', () => {
    const k = randomBytes(32);
    for (const iv of [randomBytes(16), Buffer.from('ffffffffffffffffffffffffffffffff', 'hex'), Buffer.from('00000000000000ffffffffffffffffff', 'hex')]) {
      const msg = randomBytes(1000);
      const c = createCipheriv('aes-256-ctr', k, iv);
      const a = Buffer.concat([c.update(msg), c.final()]);
      expect(a.equals(Buffer.from(ctr(k, iv).encrypt(msg)))).toBe(true);
    }
  });

  it('AES-CTR of the native addon (OpenSSL, into a buffer and in place) equals noble ctr; AES-128 too', () => {
    if (process.env.JBACKUP_REQUIRE_INTEROP === '1') expect(nativeAesCtr, 'native aesCtr missing').toBeDefined();
    if (!nativeAesCtr) return;
    for (const klen of [16, 32]) {
      const k = randomBytes(klen);
      for (const iv of [randomBytes(16), Buffer.from('ffffffffffffffffffffffffffffffff', 'hex'), Buffer.from('00000000000000ffffffffffffffffff', 'hex')]) {
        for (const n of [0, 1, 16, 17, 1000, (1 << 20) + 5]) {
          const msg = randomBytes(n);
          const want = Buffer.from(ctr(k, iv).encrypt(msg));
          const out = Buffer.alloc(n + 3, 0xee);
          nativeAesCtr(k, iv, msg, out);
          expect(out.subarray(0, n).equals(want)).toBe(true);
          expect(out.subarray(n).equals(Buffer.alloc(3, 0xee))).toBe(true); // nothing beyond src's length
          const inPlace = Buffer.from(msg);
          nativeAesCtr(k, iv, inPlace, inPlace);
          expect(inPlace.equals(want)).toBe(true);
        }
      }
    }
    const b = randomBytes(64);
    expect(() => nativeAesCtr!(randomBytes(32), randomBytes(16), b.subarray(0, 32), b.subarray(16, 48))).toThrow(/overlap/);
    expect(() => nativeAesCtr!(randomBytes(24), randomBytes(16), b, Buffer.alloc(64))).toThrow(/length/);
    expect(() => nativeAesCtr!(randomBytes(32), randomBytes(16), b, Buffer.alloc(63))).toThrow(/length/);
  });

  it('open in place leaves the plaintext in the stored bytes; a bad MAC leaves them untouched', () => {
    const key = makeMasterKey(randomBytes(32), randomBytes(16), randomBytes(16));
    for (const n of [0, 5, 4096, (1 << 20) + 3]) {
      const m = randomBytes(n);
      const s = seal(key, m);
      const copy = Buffer.from(s);
      expect(open(key, copy).equals(m)).toBe(true);
      expect(copy.equals(s)).toBe(true); // not in place: unchanged
      const p = open(key, copy, true);
      expect(p.equals(m)).toBe(true);
      if (nativeAesCtr) expect(p.buffer === copy.buffer && p.byteOffset === copy.byteOffset + 16).toBe(true);
      const bad = Buffer.from(s);
      bad[bad.length - 1]! ^= 1;
      const before = Buffer.from(bad);
      expect(() => open(key, bad, true)).toThrow(/verification failed/);
      expect(bad.equals(before)).toBe(true);
    }
  });

  it('seal/open round trip at many sizes', () => {
    const key = makeMasterKey(randomBytes(32), randomBytes(16), randomBytes(16));
    for (const n of [0, 1, 15, 16, 17, 1 << 16, (1 << 20) + 3]) {
      const m = randomBytes(n);
      const s = seal(key, m);
      expect(s.length).toBe(n + 32);
      expect(open(key, s).equals(m)).toBe(true);
    }
  });

  it('clamps r as the paper says', () => {
    expect(clampR(Buffer.alloc(16, 0xff)).toString('hex')).toBe('ffffff0ffcffff0ffcffff0ffcffff0f');
  });
});

describe('reference repository vectors (restic-format-vectors.json)', () => {
  const master = masterKeyFromJSON(V.masterkey_json);

  it('scrypt output and key file', async () => {
    const kf = JSON.parse(V.keyfile) as { salt: string };
    const out = await scrypt(Buffer.from(V.password), Buffer.from(kf.salt, 'base64'), { N: 1024, r: 8, p: 1 });
    expect(out.toString('hex')).toBe(V.scrypt_output_hex);
    expect(sha256hex(Buffer.from(V.keyfile))).toBe(V.keyfile_name);
    const mk = await openKeyFile(Buffer.from(V.keyfile), Buffer.from(V.password));
    expect(mk.encrypt.equals(master.encrypt)).toBe(true);
    expect(mk.macK.equals(master.macK)).toBe(true);
    expect(mk.macR.equals(master.macR)).toBe(true);
    expect(keyFromKdf(out).encrypt.length).toBe(32);
    await expect(openKeyFile(Buffer.from(V.keyfile), Buffer.from('wrong'))).rejects.toBeInstanceOf(WrongPasswordError);
  });

  it('a new key file opens with its password and not with another', async () => {
    const kf = await createKeyFile(Buffer.from('pw'), master, { N: 1024, r: 8, p: 1 });
    const j = JSON.parse(kf.toString()) as Record<string, unknown>;
    expect(Object.keys(j)).toEqual(['created', 'username', 'hostname', 'kdf', 'N', 'r', 'p', 'salt', 'data']);
    expect(Buffer.from(j['salt'] as string, 'base64').length).toBe(64);
    expect((await openKeyFile(kf, Buffer.from('pw'))).encrypt.equals(master.encrypt)).toBe(true);
    await expect(openKeyFile(kf, Buffer.from('pW'))).rejects.toBeInstanceOf(WrongPasswordError);
  });

  it('config', () => {
    const plain = open(master, hex(V.config_file_hex));
    expect(plain.toString()).toBe(V.config_plaintext);
    expect(decodeConfig(plain).chunker_polynomial).toBe('3da3358b4dc173');
  });

  it('data pack and tree pack headers', () => {
    for (const p of [V.data_pack, V.tree_pack]) {
      const bytes = hex(p.hex);
      expect(sha256hex(bytes)).toBe(p.id);
      const blobs = parsePackTail(master, bytes, bytes.length);
      if ('need' in blobs) throw new Error('header not in tail');
      expect(blobs).toEqual(decodeHeader(hex(p.header_plain_hex)));
      for (const b of blobs) {
        let plain = open(master, bytes.subarray(b.offset, b.offset + b.length));
        if (b.uncompressedLength) plain = zstdDecompress(plain);
        expect(sha256hex(plain)).toBe(b.id);
      }
    }
  });

  it('tree blob re-encodes byte-identically', () => {
    const tree = Buffer.from(V.tree_pack.tree_json);
    expect(sha256hex(tree)).toBe(V.tree_pack.tree_id);
    expect(encodeTree(decodeTree(tree)).equals(tree)).toBe(true);
  });

  it('index (0x02 + zstd) and snapshot (raw JSON)', () => {
    const idxFile = hex(V.index.file_hex);
    expect(sha256hex(idxFile)).toBe(V.index.name);
    const idx = decodeIndex(decodeUnpacked(master, idxFile));
    expect(idx.packs.map((p) => p.id).sort()).toEqual([V.data_pack.id, V.tree_pack.id].sort());
    const snapFile = hex(V.snapshot.file_hex);
    expect(sha256hex(snapFile)).toBe(V.snapshot.name);
    expect(decodeSnapshot(decodeUnpacked(master, snapFile)).tree).toBe(V.tree_pack.tree_id);
  });
});
