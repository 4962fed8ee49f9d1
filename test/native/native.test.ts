import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { discardPages, hasNative, mknodSync, nativeScryptMix, nativeLoadError, setMmapThreshold, setTimesNs, setTrimThreshold, splitNs } from '../../src/native/native.js';

type NativeModule = typeof import('../../src/native/native.js');

const S_IFIFO = 0o010000;
const S_IFCHR = 0o020000;

function isoNs(iso: string, fracNs: bigint): bigint {
  // iso without fractional seconds; Date handles pre-1970 (negative ms) fine
  return BigInt(Date.parse(iso)) * 1_000_000n + fracNs;
}

const TIMES: Array<[string, bigint]> = [
  ['1969-07-20T20:17:40.123456789Z', isoNs('1969-07-20T20:17:40Z', 123_456_789n)],
  ['1980-01-01T00:00:00.000000001Z', isoNs('1980-01-01T00:00:00Z', 1n)],
  ['2100-06-07T08:09:10.999999999Z', isoNs('2100-06-07T08:09:10Z', 999_999_999n)],
];

/** makedev(major, minor) in the platform's dev_t encoding */
function makedev(major: bigint, minor: bigint): bigint {
  if (process.platform === 'darwin' || process.platform.endsWith('bsd')) return (major << 24n) | minor;
  return (
    ((major & 0xfffn) << 8n) |
    ((major & ~0xfffn) << 32n) |
    (minor & 0xffn) |
    ((minor & ~0xffn) << 12n)
  );
}

const isRoot = process.getuid?.() === 0;
let dir = '';

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jbackup-native-'));
});
afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('splitNs', () => {
  it('uses floor division', () => {
    expect(splitNs(-500_000_000n)).toEqual([-1n, 500_000_000]);
    expect(splitNs(-1_000_000_000n)).toEqual([-1n, 0]);
    expect(splitNs(-1n)).toEqual([-1n, 999_999_999]);
    expect(splitNs(0n)).toEqual([0n, 0]);
    expect(splitNs(1_500_000_001n)).toEqual([1n, 500_000_001]);
  });
});

describe('native addon', () => {
  it('is loaded when JBACKUP_REQUIRE_INTEROP=1', () => {
    if (process.env.JBACKUP_REQUIRE_INTEROP === '1') {
      expect(hasNative, `addon not loaded: ${nativeLoadError?.message}`).toBe(true);
    } else if (!hasNative) {
      console.warn(`[native] addon not loaded (${nativeLoadError?.message}); testing fallbacks only`);
    }
  });

  describe.each(TIMES)('setTimesNs %s', (_label, ns) => {
    it.runIf(hasNative)('sets a file time exactly', () => {
      const f = path.join(dir, `file-${ns}`);
      fs.writeFileSync(f, 'x');
      const atime = ns - 7_000_000_001n;
      setTimesNs(f, atime, ns, { noFollow: false });
      const st = fs.lstatSync(f, { bigint: true });
      expect(st.mtimeNs).toBe(ns);
      expect(st.atimeNs).toBe(atime);
    });

    it.runIf(hasNative)('sets a symlink time exactly without touching the target (noFollow)', () => {
      const target = path.join(dir, `target-${ns}`);
      const link = path.join(dir, `link-${ns}`);
      fs.writeFileSync(target, 'x');
      fs.symlinkSync(target, link);
      const before = fs.statSync(target, { bigint: true }).mtimeNs;
      setTimesNs(Buffer.from(link), ns, ns, { noFollow: true });
      expect(fs.lstatSync(link, { bigint: true }).mtimeNs).toBe(ns);
      expect(fs.lstatSync(link, { bigint: true }).atimeNs).toBe(ns);
      expect(fs.statSync(target, { bigint: true }).mtimeNs).toBe(before);
    });
  });

  it.runIf(hasNative)('follows symlinks without noFollow', () => {
    const target = path.join(dir, 'follow-target');
    const link = path.join(dir, 'follow-link');
    fs.writeFileSync(target, 'x');
    fs.symlinkSync(target, link);
    const ns = TIMES[0]![1];
    setTimesNs(link, ns, ns, { noFollow: false });
    expect(fs.statSync(target, { bigint: true }).mtimeNs).toBe(ns);
  });

  it.runIf(hasNative)('handles non-UTF-8 path bytes', () => {
    const name = Buffer.concat([Buffer.from(dir + '/raw-'), Buffer.from([0xff, 0xfe, 0x80])]);
    fs.writeFileSync(name, 'x');
    const ns = TIMES[2]![1];
    setTimesNs(name, ns, ns, { noFollow: true });
    expect(fs.lstatSync(name, { bigint: true }).mtimeNs).toBe(ns);
  });

  it.runIf(process.platform === 'linux')('sets glibc\'s mmap and trim thresholds', () => {
    expect(hasNative).toBe(true);
    expect(setMmapThreshold(16 * 1024 * 1024)).toBe(true);
    expect(setTrimThreshold(1024 * 1024)).toBe(true);
  });

  it.runIf(process.platform === 'linux')('discards the whole pages inside a buffer (RSS drops, zeros read back, the edges kept)', () => {
    expect(hasNative).toBe(true);
    const n = 32 * 1024 * 1024;
    const b = Buffer.from(new SharedArrayBuffer(n + 100));
    const u = b.subarray(50, 50 + n); // unaligned on both ends
    u.fill(7);
    b[0] = 1;
    b[b.length - 1] = 2;
    const rss = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
    const before = rss();
    const done = discardPages(u);
    expect(done).toBeGreaterThan(n - 8192);
    expect(done).toBeLessThanOrEqual(n);
    expect(before - rss()).toBeGreaterThan(n / 2);
    // bytes of partial pages at the ends stay; whole pages read as zeros
    expect(b[0]).toBe(1);
    expect(b[b.length - 1]).toBe(2);
    expect(u[0]).toBe(7);
    expect(u[n - 1]).toBe(7);
    expect(u[n >> 1]).toBe(0);
    u.fill(9);
    expect(u[n >> 1]).toBe(9); // still usable
  });

  it.runIf(process.arch === 'x64')('scrypt SMix (SSE2, one or two lanes at a time) gives node:crypto\'s scrypt', async () => {
    expect(nativeScryptMix).toBeDefined();
    const mix = nativeScryptMix!;
    const derive = (pw: Buffer, salt: Buffer, N: number, r: number, p: number, threads: number) => new Promise<Buffer>((resolve, reject) => {
      const b = crypto.pbkdf2Sync(pw, salt, 1, p * 128 * r, 'sha256');
      mix(b, N, r, (e) => (e ? reject(e) : resolve(crypto.pbkdf2Sync(pw, b, 1, 64, 'sha256'))), threads);
    });
    for (const [N, r, p] of [[2, 1, 1], [16, 1, 1], [1024, 8, 1], [1024, 8, 3], [2048, 1, 2], [4096, 3, 5], [16384, 8, 2]] as const) {
      const pw = crypto.randomBytes(1 + N % 40);
      const salt = crypto.randomBytes(64);
      const want = crypto.scryptSync(pw, salt, 64, { N, r, p, maxmem: 1 << 30 });
      for (const threads of [1, 2]) expect((await derive(pw, salt, N, r, p, threads)).equals(want), `N=${N} r=${r} p=${p} threads=${threads}`).toBe(true);
    }
    expect(() => mix(Buffer.alloc(128 * 8), 1000, 8, () => {})).toThrow(/bad parameters/); // N not a power of two
    expect(() => mix(Buffer.alloc(100), 1024, 8, () => {})).toThrow(/bad parameters/); // not whole lanes
  });

  it('creates a FIFO', () => {
    const f = path.join(dir, 'fifo');
    mknodSync(f, S_IFIFO | 0o640, 0n);
    const st = fs.lstatSync(f);
    expect(st.isFIFO()).toBe(true);
    expect(st.mode & 0o777).toBe(0o640 & ~process.umask());
  });

  it.runIf(isRoot)('creates a character device (root)', () => {
    const f = path.join(dir, 'chardev');
    const dev = makedev(1n, 3n);
    if (process.platform === 'linux') expect(dev).toBe(0x103n);
    mknodSync(f, S_IFCHR | 0o620, dev);
    const st = fs.lstatSync(f, { bigint: true });
    expect(st.isCharacterDevice()).toBe(true);
    expect(st.rdev).toBe(dev);
  });

  it('throws errors carrying an errno code', () => {
    const missing = path.join(dir, 'no-such-dir', 'x');
    const codeOf = (fn: () => void): unknown => {
      try {
        fn();
      } catch (e) {
        return (e as NodeJS.ErrnoException).code;
      }
      return 'no error';
    };
    expect(codeOf(() => setTimesNs(missing, 0n, 0n, { noFollow: true }))).toBe('ENOENT');
    expect(codeOf(() => setTimesNs(missing, 0n, 0n, { noFollow: false }))).toBe('ENOENT');
    expect(codeOf(() => mknodSync(missing, S_IFIFO | 0o600, 0n))).toBe('ENOENT');
    const fifo = path.join(dir, 'fifo-exists');
    mknodSync(fifo, S_IFIFO | 0o600, 0n);
    expect(codeOf(() => mknodSync(fifo, S_IFIFO | 0o600, 0n))).toBe('EEXIST');
  });

  it.runIf(hasNative)('error message names syscall and path', () => {
    const missing = path.join(dir, 'no-such-dir', 'y');
    expect(() => setTimesNs(missing, 0n, 0n, { noFollow: false })).toThrow(
      new RegExp(`^utimensat ${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `),
    );
  });
});

describe('fallbacks (JBACKUP_NO_NATIVE=1)', () => {
  let fb: NativeModule;
  beforeAll(async () => {
    vi.stubEnv('JBACKUP_NO_NATIVE', '1');
    vi.resetModules();
    fb = await import('../../src/native/native.js');
    vi.unstubAllEnvs();
  });

  it('does not load the addon', () => {
    expect(fb.hasNative).toBe(false);
  });

  it('sets times to microsecond precision', () => {
    const f = path.join(dir, 'fb-file');
    const link = path.join(dir, 'fb-link');
    fs.writeFileSync(f, 'x');
    fs.symlinkSync(f, link);
    const ns = isoNs('1980-01-01T00:00:00Z', 123_456_000n);
    fb.setTimesNs(f, ns, ns, { noFollow: false });
    const got = fs.lstatSync(f, { bigint: true }).mtimeNs;
    expect(got - ns < 1000n && ns - got < 1000n).toBe(true);
    fb.setTimesNs(link, ns, ns, { noFollow: true });
    const gotLink = fs.lstatSync(link, { bigint: true }).mtimeNs;
    expect(gotLink - ns < 1000n && ns - gotLink < 1000n).toBe(true);
  });

  it('creates a FIFO via mkfifo', () => {
    const f = path.join(dir, 'fb-fifo');
    fb.mknodSync(f, S_IFIFO | 0o600, 0n);
    expect(fs.lstatSync(f).isFIFO()).toBe(true);
  });

  it.runIf(isRoot)('creates a character device via mknod (root)', () => {
    const f = path.join(dir, 'fb-chardev');
    const dev = makedev(1n, 3n);
    fb.mknodSync(f, S_IFCHR | 0o620, dev);
    const st = fs.lstatSync(f, { bigint: true });
    expect(st.isCharacterDevice()).toBe(true);
    expect(st.rdev).toBe(dev);
  });

  it('throws errors with codes', () => {
    const missing = path.join(dir, 'no-such-dir', 'z');
    expect(() => fb.mknodSync(missing, S_IFIFO | 0o600, 0n)).toThrow(
      expect.objectContaining({ code: 'ENOENT' }),
    );
    expect(() => fb.setTimesNs(missing, 0n, 0n, { noFollow: false })).toThrow(
      expect.objectContaining({ code: 'ENOENT' }),
    );
  });
});
