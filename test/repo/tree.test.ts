import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { decodeTree, decodeTreeExact, decodeTreeFast, encodeTree, type Node } from '../../src/repo/tree.js';
import { goJsonString } from '../../src/format/gojson.js';
import { goFileModeFromPosix, nodeTypeFromGoMode, posixModeFromGo, posixTypeBits } from '../../src/format/gomode.js';
import { goQuote, goQuoteBody, goUnquote, isGoPrint } from '../../src/format/goquote.js';
import { formatTimeFromNs, formatTimeNs, parseTimeNs } from '../../src/format/gotime.js';
import { nodeFromStat } from '../../src/archiver/node.js';

/** Deterministic incompressible bytes (so restic's chunker cuts the file into several blobs). */
function randomish(n: number): Buffer {
  const out = Buffer.alloc(n);
  let block = createHash('sha256').update('jbackup').digest();
  for (let off = 0; off < n; off += 32) {
    block = createHash('sha256').update(block).digest();
    block.copy(out, off);
  }
  return out;
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const B = (s: string | number[]): Buffer => (typeof s === 'string' ? Buffer.from(s, 'utf8') : Buffer.from(s));

function withTZ<T>(tz: string, fn: () => T): T {
  const old = process.env.TZ;
  process.env.TZ = tz;
  try {
    return fn();
  } finally {
    if (old === undefined) delete process.env.TZ;
    else process.env.TZ = old;
  }
}

function baseNode(name: string | Buffer, extra: Partial<Node> = {}): Node {
  return {
    name: typeof name === 'string' ? B(name) : name,
    type: 'file',
    mode: 0o644,
    mtime: '2020-01-01T00:00:00Z',
    atime: '2020-01-01T00:00:00Z',
    ctime: '2020-01-01T00:00:00Z',
    uid: 0,
    gid: 0,
    content: [],
    ...extra,
  };
}

/** The JSON text restic writes for a name (the part between "name": and ,"type"). */
function nameJson(name: Buffer): string {
  return goJsonString(goQuoteBody(name));
}

describe('Go quoting of names', () => {
  // §9 table: real name -> JSON value restic writes
  const table: [Buffer, string][] = [
    [B('quo"te'), String.raw`"quo\\\"te"`],
    [B('back\\slash'), String.raw`"back\\\\slash"`],
    [B('new\nline'), String.raw`"new\\nline"`],
    [Buffer.concat([B('bad'), B([0xff]), B('name')]), String.raw`"bad\\xffname"`],
    [B('ümlaut'), '"ümlaut"'],
    [B('<html>&'), String.raw`"\u003chtml\u003e\u0026"`],
  ];
  it.each(table.map(([n, j]) => [n.toString('latin1'), n, j] as const))('%s', (_l, n, j) => {
    expect(nameJson(n)).toBe(j);
    const dec = decodeTree(B(`{"nodes":[{"name":${j},"type":"file","content":[]}]}`));
    expect(dec[0]!.name.equals(n)).toBe(true);
  });

  it('escapes controls, DEL, non-printables and invalid UTF-8 like strconv.Quote', () => {
    expect(goQuote(B('\x07\x08\x0c\n\r\t\x0b'))).toBe(String.raw`"\a\b\f\n\r\t\v"`);
    expect(goQuote(B('\x00\x01\x1f\x7f'))).toBe(String.raw`"\x00\x01\x1f\x7f"`);
    for (let c = 0x20; c < 0x7f; c++) { // printable ASCII (the fast path) but for the two escapes
      const ch = String.fromCharCode(c);
      expect(goQuote(B('a' + ch + 'b'))).toBe('"a' + (ch === '"' ? '\\"' : ch === '\\' ? '\\\\' : ch) + 'b"');
    }
    expect(goQuote(B('a\u00a0b'))).toBe(String.raw`"a\u00a0b"`); // NBSP is not printable in Go
    expect(goQuote(B('\u0085\u200b\u2028\ufeff'))).toBe(String.raw`"\u0085\u200b\u2028\ufeff"`);
    expect(goQuote(B('😀 ü\u0075\u0308 日本'))).toBe('"😀 ü\u0075\u0308 日本"');
    expect(goQuote(B('\ufffd'))).toBe('"\ufffd"'); // a genuine U+FFFD is printable
    expect(goQuote(B([0xe2, 0x82]))).toBe(String.raw`"\xe2\x82"`); // truncated sequence: every byte
    expect(goQuote(B([0xed, 0xa0, 0x80]))).toBe(String.raw`"\xed\xa0\x80"`); // surrogate encoding
    expect(goQuote(B([0xc0, 0x80]))).toBe(String.raw`"\xc0\x80"`); // overlong
    expect(goQuote(B([0xf4, 0x90, 0x80, 0x80]))).toBe(String.raw`"\xf4\x90\x80\x80"`); // > U+10FFFF
    expect(goQuote(B('\u{e0001}'))).toBe(String.raw`"\U000e0001"`);
  });

  it('uses Go 1.19 (Unicode 13) printability, not the JS engine tables', () => {
    // U+1FAE0 MELTING FACE and U+0870 are Unicode 14: Go 1.19 escapes them (checked with restic 0.14).
    expect(goQuote(B('\u{1fae0}'))).toBe(String.raw`"\U0001fae0"`);
    expect(goQuote(B('\u0870'))).toBe(String.raw`"\u0870"`);
    expect(goQuote(B('\u{1f972}'))).toBe('"\u{1f972}"'); // Unicode 13 emoji: raw
    expect(isGoPrint(0x20)).toBe(true);
    expect(isGoPrint(0x3000)).toBe(false); // ideographic space
    expect(isGoPrint(0xe000)).toBe(false); // private use
    expect(isGoPrint(0x10ffff)).toBe(false);
  });

  it('goUnquote handles every Go escape, raw characters, with or without quotes', () => {
    expect(goUnquote(String.raw`\a\b\f\n\r\t\v\\\"`)).toEqual(B('\x07\x08\x0c\n\r\t\x0b\\"'));
    expect(goUnquote(String.raw`"\x41\xff\101\377\u00e9\U0001F600"`)).toEqual(
      Buffer.concat([B('A'), B([0xff]), B('A'), B([0xff]), B('é😀')]),
    );
    expect(goUnquote('raw\ttab\nnl ü')).toEqual(B('raw\ttab\nnl ü'));
    expect(goUnquote('')).toEqual(B(''));
    expect(goUnquote('""')).toEqual(B(''));
    for (const bad of [String.raw`\q`, String.raw`\x4`, String.raw`\400`, String.raw`\ud800`, String.raw`\U00110000`, 'a"b', '\\', String.raw`\'`]) {
      expect(() => goUnquote(bad), bad).toThrow();
    }
  });

  it('goUnquote inverts goQuote for random bytes', () => {
    let seed = 12345;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000;
    for (let i = 0; i < 2000; i++) {
      const len = Math.floor(rnd() * 24);
      const b = Buffer.alloc(len);
      for (let k = 0; k < len; k++) b[k] = rnd() < 0.5 ? Math.floor(rnd() * 256) : 0x20 + Math.floor(rnd() * 95);
      if (rnd() < 0.3) b.write('\u{1f600}\u00a0\ue000', Math.floor(rnd() * Math.max(1, len - 9)));
      expect(goUnquote(goQuote(b))).toEqual(b);
      expect(goUnquote(goQuoteBody(b))).toEqual(b);
    }
  });
});

describe('Go JSON string escaping (go1.19)', () => {
  it('escapes like encoding/json with HTML escaping', () => {
    expect(goJsonString(B('<a>&b'))).toBe(String.raw`"\u003ca\u003e\u0026b"`);
    expect(goJsonString(B('\b\f\n\r\t\x00\x1f\x7f'))).toBe('"\\u0008\\u000c\\n\\r\\t\\u0000\\u001f\x7f"');
    expect(goJsonString(B('x\u2028y\u2029z/é😀'))).toBe(String.raw`"x\u2028y\u2029z/` + 'é😀"');
    expect(goJsonString(B('"\\'))).toBe(String.raw`"\"\\"`);
  });
  it('writes each invalid UTF-8 byte as the escape \\ufffd (errata 2)', () => {
    expect(goJsonString(Buffer.concat([B([0xfe, 0xff]), B('target')]))).toBe(String.raw`"\ufffd\ufffdtarget"`);
    expect(goJsonString(B([0xe2, 0x82, 0x41]))).toBe(String.raw`"\ufffd\ufffdA"`);
    expect(goJsonString(B('\ufffd'))).toBe('"\ufffd"'); // genuine U+FFFD raw
  });
});

describe('modes', () => {
  it('maps POSIX st_mode to Go FileMode (values observed with restic)', () => {
    expect(goFileModeFromPosix(0o100644)).toBe(420);
    expect(goFileModeFromPosix(0o040755)).toBe(2147484141);
    expect(goFileModeFromPosix(0o120777)).toBe(134218239);
    expect(goFileModeFromPosix(0o010644)).toBe(33554852);
    expect(goFileModeFromPosix(0o104755)).toBe(8389101);
    expect(goFileModeFromPosix(0o041777)).toBe(2148532735);
    expect(goFileModeFromPosix(0o042755)).toBe(2151678445);
    expect(goFileModeFromPosix(0o060660)).toBe(67109296);
    expect(goFileModeFromPosix(0o020620)).toBe(69206416);
    expect(goFileModeFromPosix(0o140755)).toBe(16777709);
    expect(goFileModeFromPosix(0o047777)).toBeGreaterThan(0);
  });
  it('derives the node type and POSIX bits back', () => {
    const cases: [number, string][] = [
      [0o100644, 'file'], [0o040755, 'dir'], [0o120777, 'symlink'], [0o010644, 'fifo'],
      [0o060660, 'dev'], [0o020620, 'chardev'], [0o140755, 'socket'], [0o107777, 'file'], [0o047777, 'dir'],
    ];
    for (const [st, type] of cases) {
      const gm = goFileModeFromPosix(st);
      expect(nodeTypeFromGoMode(gm)).toBe(type);
      expect(posixModeFromGo(gm, type)).toBe(st & 0o7777);
      expect(posixTypeBits(type) | posixModeFromGo(gm, type)).toBe(st);
    }
    expect(posixModeFromGo(0o104755, 'file')).toBe(0o755); // POSIX-style mode: setuid lost, as in restic
  });
});

describe('times', () => {
  it('formats Go RFC3339Nano', () => {
    expect(formatTimeNs(315532800n, 0, 0)).toBe('1980-01-01T00:00:00Z');
    expect(formatTimeNs(4102542245n, 123456789, 0)).toBe('2100-01-02T03:04:05.123456789Z');
    expect(formatTimeNs(-1n, 500_000_000, 0)).toBe('1969-12-31T23:59:59.5Z');
    expect(formatTimeFromNs(-500_000_000n, 0)).toBe('1969-12-31T23:59:59.5Z');
    expect(formatTimeFromNs(-1n, 0)).toBe('1969-12-31T23:59:59.999999999Z');
    expect(formatTimeNs(0n, 10, 0)).toBe('1970-01-01T00:00:00.00000001Z');
    expect(formatTimeNs(0n, 120_000_000, 0)).toBe('1970-01-01T00:00:00.12Z');
    expect(formatTimeNs(0n, 0, 60)).toBe('1970-01-01T01:00:00+01:00');
    expect(formatTimeNs(0n, 0, -210)).toBe('1969-12-31T20:30:00-03:30');
    expect(formatTimeNs(-62135596800n, 0, 0)).toBe('0001-01-01T00:00:00Z');
    expect(formatTimeNs(253402300799n, 999_999_999, 0)).toBe('9999-12-31T23:59:59.999999999Z');
    expect(formatTimeNs(951782400n, 0, 0)).toBe('2000-02-29T00:00:00Z');
  });
  it("clamps years like restic's FixTime", () => {
    expect(formatTimeNs(253402300800n, 5, 0)).toBe('9999-01-01T00:00:00.000000005Z'); // 10000-01-01
    const feb29y10400 = parseTimeNs('2000-02-29T12:00:00Z') + 21n * 146097n * 86400n * 1_000_000_000n;
    expect(formatTimeFromNs(feb29y10400, 0)).toBe('9999-03-01T12:00:00Z');
    expect(formatTimeNs(-62167219201n, 0, 0)).toBe('0000-12-31T23:59:59Z'); // year -1 -> 0
  });
  it('uses the process time zone by default (TZ honoured)', () => {
    expect(withTZ('UTC', () => formatTimeNs(0n, 0))).toBe('1970-01-01T00:00:00Z');
    expect(withTZ('Asia/Kolkata', () => formatTimeNs(0n, 0))).toBe('1970-01-01T05:30:00+05:30');
    expect(withTZ('America/St_Johns', () => formatTimeNs(0n, 5))).toBe('1969-12-31T20:30:00.000000005-03:30');
    expect(withTZ('Europe/Berlin', () => formatTimeNs(1719835200n, 0))).toBe('2024-07-01T14:00:00+02:00');
    // offsets with seconds (Madras time +05:21:10): Go prints the wall clock but truncates the offset
    expect(withTZ('Asia/Kolkata', () => formatTimeNs(-2145916800n, 0))).toBe('1902-01-01T05:21:10+05:21');
  });
  it('parses RFC 3339 in all its forms', () => {
    expect(parseTimeNs('1970-01-01T00:00:00Z')).toBe(0n);
    expect(parseTimeNs('1969-12-31T23:59:59.5Z')).toBe(-500_000_000n);
    expect(parseTimeNs('1970-01-01T01:00:00+01:00')).toBe(0n);
    expect(parseTimeNs('1969-12-31T20:30:00.000000005-03:30')).toBe(5n);
    expect(parseTimeNs('2100-01-02T03:04:05.123456789Z')).toBe(4102542245_123456789n);
    expect(parseTimeNs('2100-01-02T03:04:05.1234567891234Z')).toBe(4102542245_123456789n);
    expect(parseTimeNs('0001-01-01T00:00:00Z')).toBe(-62135596800_000000000n);
    expect(parseTimeNs('9999-12-31T23:59:59.999999999+14:00')).toBe(253402250399_999999999n);
    for (let d = 0; d <= 9; d++) {
      const frac = d === 0 ? '' : '.' + '123456789'.slice(0, d);
      expect(parseTimeNs(`1980-01-01T00:00:00${frac}Z`)).toBe(315532800n * 1_000_000_000n + BigInt(('123456789'.slice(0, d) || '0').padEnd(9, '0')));
    }
    for (const bad of ['2020-02-30T00:00:00Z', '2020-01-01 00:00:00Z', '2020-01-01T24:00:00Z', '2020-01-01T00:00:00', '2020-13-01T00:00:00Z']) {
      expect(() => parseTimeNs(bad), bad).toThrow();
    }
  });
  it('round-trips format/parse over a wide range', () => {
    let seed = 7;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000;
    for (let i = 0; i < 3000; i++) {
      const sec = BigInt(Math.floor((rnd() * 2 - 1) * 62_000_000_000));
      const nsec = rnd() < 0.2 ? 0 : Math.floor(rnd() * 1e9);
      const off = Math.floor(rnd() * 1680) - 840;
      const s = formatTimeNs(sec, nsec, off);
      expect(parseTimeNs(s)).toBe(sec * 1_000_000_000n + BigInt(nsec));
    }
  });
});

describe('tree encoding', () => {
  it('writes the empty tree as 13 bytes', () => {
    expect(encodeTree([]).toString()).toBe('{"nodes":[]}\n');
    expect(decodeTree(B('{"nodes":[]}\n'))).toEqual([]);
    expect(decodeTree(B('{"nodes":null}'))).toEqual([]);
  });

  it('sorts by raw UTF-8 bytes (astral after U+E000, unlike UTF-16 order) and rejects duplicates', () => {
    const names = ['\u{1f600}', '\ue000', 'b', 'a', 'Z', '\u00e9', '\uffff', 'a\u0000'].map((s) => B(s));
    const enc = encodeTree(names.map((n) => baseNode(n)));
    const order = decodeTree(enc).map((n) => n.name.toString('utf8'));
    expect(order).toEqual(['Z', 'a', 'a\u0000', 'b', '\u00e9', '\ue000', '\uffff', '\u{1f600}']);
    expect(['\u{1f600}', '\ue000'].sort()).toEqual(['\u{1f600}', '\ue000']); // what JS would do
    expect(() => encodeTree([baseNode('x'), baseNode('y'), baseNode('x')])).toThrow(/duplicate/);
    expect(() => encodeTree([baseNode('')])).toThrow();
  });

  it('writes fields in restic order with the omit rules', () => {
    const n: Node = {
      name: B('f'), type: 'file', mode: 0, mtime: '2020-01-01T00:00:00Z', atime: '2020-01-01T00:00:00Z',
      ctime: '2020-01-01T00:00:00Z', uid: 0, gid: 0, user: '', group: '', inode: 0n, size: 0n, links: 0n, content: [],
    };
    expect(encodeTree([n]).toString()).toBe(
      '{"nodes":[{"name":"f","type":"file","mtime":"2020-01-01T00:00:00Z","atime":"2020-01-01T00:00:00Z","ctime":"2020-01-01T00:00:00Z","uid":0,"gid":0,"content":[]}]}\n',
    );
    const full: Node = {
      ...n, name: B('g'), type: 'dev', mode: 67109296, user: 'u<', group: 'g', inode: 1n, deviceId: 2n, size: 3n, links: 4n,
      linktarget: B('t'), extendedAttributes: [{ name: 'user.a', value: B('v') }, { name: 'user.e', value: Buffer.alloc(0) }, { name: 'user.n', value: null }],
      genericAttributes: { 'windows.b': '{ "x" : 1 }', 'windows.a': '"<"' }, device: 5n, content: null, subtree: 'ab'.repeat(32), error: 'e',
    };
    expect(encodeTree([full]).toString()).toBe(
      '{"nodes":[{"name":"g","type":"dev","mode":67109296,"mtime":"2020-01-01T00:00:00Z","atime":"2020-01-01T00:00:00Z","ctime":"2020-01-01T00:00:00Z",' +
        '"uid":0,"gid":0,"user":"u\\u003c","group":"g","inode":1,"device_id":2,"size":3,"links":4,"linktarget":"t",' +
        '"extended_attributes":[{"name":"user.a","value":"dg=="},{"name":"user.e","value":""},{"name":"user.n","value":null}],' +
        '"generic_attributes":{"windows.a":"\\u003c","windows.b":{"x":1}},"device":5,"content":null,' +
        `"subtree":"${'ab'.repeat(32)}","error":"e"}]}\n`,
    );
    const back = decodeTree(encodeTree([full]));
    expect(encodeTree(back).equals(encodeTree([full]))).toBe(true);
  });

  it('the JSON.parse fast path decodes exactly as the Go-semantics parser (random trees and odd JSON)', () => {
    let seed = 12345;
    const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) >>> 0; return seed % n; };
    const hex = () => createHash('sha256').update(String(rnd(1e9))).digest('hex');
    const names = ['a', 'Ärger', 'x\\y', 'tab\there', 'nul\u0001', 'emoji 😀', 'q"uote', '💾'.repeat(60)];
    let fast = 0;
    for (let t = 0; t < 50; t++) {
      const nodes: Node[] = [];
      const count = rnd(20);
      for (let i = 0; i < count; i++) {
        const dir = rnd(3) === 0;
        const n = baseNode(`${names[rnd(names.length)]}-${i}`, dir ? { type: 'dir', subtree: hex(), content: null } : { content: Array.from({ length: rnd(4) }, hex) });
        n.mode = rnd(2) ? 0o644 : (0x80000000 | 0o755) >>> 0;
        n.uid = rnd(2) ? 0 : 4294967295;
        n.inode = rnd(3) === 0 ? (1n << 60n) + BigInt(rnd(1000)) : BigInt(rnd(1e6));
        n.size = BigInt(rnd(1e9));
        if (rnd(2)) n.user = 'root';
        n.mtime = formatTimeNs(BigInt(rnd(4e9)), rnd(1e9));
        nodes.push(n);
      }
      const enc = encodeTree(nodes);
      const f = decodeTreeFast(enc);
      if (f) fast++;
      expect(decodeTree(enc)).toEqual(decodeTreeExact(enc));
      if (f) expect(f).toEqual(decodeTreeExact(enc));
    }
    // trees without inodes ≥ 2^53 take the fast path
    expect(fast).toBeGreaterThan(5);
    // long digit runs inside strings (hex ids) do not matter; a long number outside does
    const digits = `{"nodes":[{"name":"a","content":["1234567890123456789${'a'.repeat(45)}"]}]}`;
    expect(decodeTreeFast(B(digits))).not.toBeNull();
    expect(decodeTreeFast(B(`{"nodes":[{"name":"a\\"","size":12345678901234567}]}`))).toBeNull();
    // inputs the fast path must hand over to the exact parser (or agree with it)
    const id = 'AB'.repeat(32);
    for (const json of [
      `{"nodes":[{"Name":"a","type":"file","content":["${id}"]}]}`,
      `{"nodes":[{"name":"a","name":"b","content":null}]}`,
      `{"nodes":[{"name":"a","extra":1}],"more":2}`,
      `{"NODES":[{"name":"a"}]}`,
      `{"nodes":[{"name":"a","size":12345678901234567}]}`,
      `{"nodes":[{"name":"a","mode":null,"uid":null,"user":null,"subtree":null,"content":null}]}`,
      `{"nodes":[{"name":"link","type":"symlink","linktarget":"t"}]}`,
      `{"nodes":[{"name":"a","subtree":"${id}"}]}`,
    ]) {
      expect(decodeTree(B(json))).toEqual(decodeTreeExact(B(json)));
    }
    for (const bad of [`{"nodes":[{"name":"a","uid":-1}]}`, `{"nodes":[{"name":"a","content":["xyz"]}]}`, `{"nodes":[{"name":"a","mtime":"yesterday"}]}`, `{"nodes":{}}`]) {
      expect(() => decodeTree(B(bad))).toThrow();
      expect(() => decodeTreeExact(B(bad))).toThrow();
    }
  });

  it('keeps uint64 values exact above 2^53', () => {
    const big = (1n << 64n) - 1n;
    const n = baseNode('f', { inode: big, deviceId: (1n << 53n) + 1n, size: 9007199254740993n, links: 1n << 63n, device: 18446744073709551614n });
    const enc = encodeTree([n]);
    expect(enc.toString()).toContain('"inode":18446744073709551615,"device_id":9007199254740993,"size":9007199254740993,"links":9223372036854775808');
    const d = decodeTree(enc)[0]!;
    expect(d.inode).toBe(big);
    expect(d.deviceId).toBe((1n << 53n) + 1n);
    expect(d.size).toBe(9007199254740993n);
    expect(d.device).toBe(18446744073709551614n);
    expect(encodeTree([d]).equals(enc)).toBe(true);
    expect(() => decodeTree(B('{"nodes":[{"name":"a","inode":18446744073709551616}]}'))).toThrow();
    expect(() => decodeTree(B('{"nodes":[{"name":"a","inode":1.5}]}'))).toThrow();
    expect(() => encodeTree([baseNode('x', { inode: -1n })])).toThrow();
  });

  it('decodes tolerantly: unknown and missing fields, whitespace, case, linktarget_raw, upper-case ids', () => {
    const id = 'AB'.repeat(32);
    const json = String.raw` { "extra" : [1, {"x": null}], "nodes" : [
      { "Name": "a\\\\x", "type": "symlink", "future": {"deep": [true, false]}, "linktarget": "\ufffdt",
        "linktarget_raw": "/3Q=", "mtime": "2020-01-01T00:00:00.1+01:00" },
      { "name": "d", "type": "dir", "subtree": "${id}", "content": null, "mode": 2147484141 },
      { "name": "f", "type": "file", "content": ["${id}"], "size": 7, "generic_attributes": {"k": [1, 2]} }
    ] , "more": "x"}`;
    const nodes = decodeTree(B(json));
    expect(nodes.map((n) => n.name.toString())).toEqual(['a\\x', 'd', 'f']);
    const [l, d, f] = nodes as [Node, Node, Node];
    expect(l.linktarget).toEqual(B([0xff, 0x74]));
    expect(l.linktargetRaw).toEqual(B([0xff, 0x74]));
    expect(l.mtime).toBe('2020-01-01T00:00:00.1+01:00');
    expect(l.atime).toBe('0001-01-01T00:00:00Z');
    expect(l.uid).toBe(0);
    expect(l.content).toBeNull();
    expect(d.subtree).toBe('ab'.repeat(32));
    expect(d.mode).toBe(2147484141);
    expect(f.content).toEqual(['ab'.repeat(32)]);
    expect(f.size).toBe(7n);
    expect(f.genericAttributes).toEqual({ k: '[1,2]' });
    const re = encodeTree(nodes).toString();
    expect(re).toContain('"linktarget":"\\ufffdt","linktarget_raw":"/3Q="');
    expect(() => decodeTree(B('{"nodes":[{"name":"a\\\\q"}]}'))).toThrow(); // bad Go escape
    expect(() => decodeTree(B('{"nodes":[]} x'))).toThrow();
  });

  it('reproduces restic 0.14 linktargets with \\ufffd escapes byte for byte after decoding', () => {
    const line = '{"nodes":[{"name":"l","type":"symlink","mode":134218239,"mtime":"2020-01-01T00:00:00Z","atime":"2020-01-01T00:00:00Z","ctime":"2020-01-01T00:00:00Z","uid":0,"gid":0,"links":1,"linktarget":"\\ufffd\\ufffdtarget\ufffd","content":null}]}\n';
    const nodes = decodeTree(B(line));
    expect(nodes[0]!.linktarget).toEqual(B('\ufffd\ufffdtarget\ufffd'));
    expect(encodeTree(nodes).toString()).toBe(line);
    // a changed link target is encoded from its bytes, not from the stale literal
    nodes[0]!.linktarget = Buffer.concat([B([0xfe]), B('x')]);
    expect(encodeTree(nodes).toString()).toContain('"linktarget":"\\ufffdx"');
  });
});

// ---------------------------------------------------------------------------------------------
// Real restic 0.14 interop

const resticProbe = spawnSync('restic', ['version'], { encoding: 'utf8' });
const haveRestic = resticProbe.status === 0;
const requireInterop = process.env.JBACKUP_REQUIRE_INTEROP === '1';
const resticVersion = haveRestic ? resticProbe.stdout.trim() : '';

describe('restic availability', () => {
  it.runIf(!haveRestic && requireInterop)('restic is required (JBACKUP_REQUIRE_INTEROP=1) but not found on PATH', () => {
    throw new Error('restic not found on PATH but JBACKUP_REQUIRE_INTEROP=1');
  });
  it.skipIf(haveRestic || requireInterop)('SKIPPED: restic not found on PATH; real-restic tree tests not run', () => {
    console.warn('restic not found on PATH: real-restic tree tests skipped (set JBACKUP_REQUIRE_INTEROP=1 to make this fail)');
  });
});

describe.runIf(haveRestic)(`real restic trees (${resticVersion || 'restic missing'})`, () => {
  let tmp = '';
  let src = '';
  let repo = '';
  const savedTZ = process.env.TZ;
  const env = (tz: string): NodeJS.ProcessEnv => ({
    ...process.env,
    RESTIC_PASSWORD: 'jbackup-test',
    RESTIC_CACHE_DIR: path.join(tmp, 'cache'),
    TZ: tz,
  });
  const restic = (tz: string, args: string[], cwd?: string): Buffer =>
    execFileSync('restic', ['--repo', repo, ...args], { env: env(tz), cwd, maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'pipe'] });
  const P = (...parts: (string | Buffer)[]): Buffer =>
    Buffer.concat(parts.flatMap((p, i) => (i === 0 ? [Buffer.from(p)] : [Buffer.from('/'), Buffer.from(p)])));

  const hasPython = spawnSync('python3', ['-c', 'import os; os.setxattr'], { encoding: 'utf8' }).status === 0;
  const isRoot = process.getuid?.() === 0;
  let expectSpecial: Buffer[] = [];

  beforeAll(() => {
    process.env.TZ = 'UTC';
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'jbackup-tree-'));
    src = path.join(tmp, 'src');
    repo = path.join(tmp, 'repo');
    fs.mkdirSync(src);
    const touch = (p: string, date: string, noDeref = false): void => {
      execFileSync('touch', [...(noDeref ? ['-h'] : []), '-d', date, p], { env: { ...process.env, TZ: 'UTC' } });
    };
    const odd: Buffer[] = [
      B('quo"te'), B('back\\slash'), B('new\nline'), B('tab\there'), Buffer.concat([B('bad'), B([0xff]), B('name')]),
      B('<html>&'), B('u\u0308mlaut-nfd'), B('\u00fcmlaut-nfc'), B('emoji-\u{1f600}'), B('nbsp\u00a0x'),
      B('melt-\u{1fae0}'), B('pua-\ue000'), B('ctl-\x01\x07\x08\x0c\x1b\x7f'), B('ls\u2028ps\u2029'), B('-leading-dash'),
      B('x'.repeat(250)), B('\ufffd-genuine'),
    ];
    for (const n of odd) fs.writeFileSync(P(src, n), n);
    fs.writeFileSync(path.join(src, 'empty'), '');
    fs.writeFileSync(path.join(src, 'hard1'), 'hard link content');
    fs.linkSync(path.join(src, 'hard1'), path.join(src, 'hard2'));
    fs.writeFileSync(path.join(src, 'setuid'), '#!/bin/sh\n');
    fs.chmodSync(path.join(src, 'setuid'), 0o4755);
    fs.mkdirSync(path.join(src, 'setgid-dir'));
    fs.chmodSync(path.join(src, 'setgid-dir'), 0o2755);
    fs.writeFileSync(path.join(src, 'setgid-dir', 'inner'), 'inner');
    fs.mkdirSync(path.join(src, 'sticky-dir'));
    fs.chmodSync(path.join(src, 'sticky-dir'), 0o1777);
    fs.mkdirSync(path.join(src, 'sub', 'deeper'), { recursive: true });
    fs.writeFileSync(path.join(src, 'sub', 'deeper', 'f'), 'deep');
    fs.symlinkSync(Buffer.concat([B([0xfe, 0xff]), B('target')]), P(src, 'badlink'));
    fs.symlinkSync(B('../<a>&"\\\u2028\ufffd\x01'), P(src, 'oddlink'));
    touch(path.join(src, 'oddlink'), '2001-02-03 04:05:06.7', true);
    execFileSync('mkfifo', [path.join(src, 'fifo')]);
    const uid4242 = path.join(src, 'unknown-owner');
    fs.writeFileSync(uid4242, 'x');
    if (isRoot) fs.chownSync(uid4242, 4242, 4343);
    fs.writeFileSync(path.join(src, 'y1980'), '1980');
    touch(path.join(src, 'y1980'), '1980-01-01 00:00:00');
    fs.writeFileSync(path.join(src, 'y2100'), '2100');
    touch(path.join(src, 'y2100'), '2100-01-02 03:04:05.123456789');
    fs.writeFileSync(path.join(src, 'y1969'), '1969');
    touch(path.join(src, 'y1969'), '1969-12-31 23:59:59.5');
    fs.writeFileSync(path.join(src, 'y1902'), '1902');
    touch(path.join(src, 'y1902'), '1902-06-01 00:00:00.25');
    fs.writeFileSync(path.join(src, 'ns'), 'ns');
    touch(path.join(src, 'ns'), '2023-05-06 07:08:09.000000001');
    fs.writeFileSync(path.join(src, 'big'), randomish(9_000_000));
    if (isRoot) {
      for (const [n, t, maj, min] of [['blockdev', 'b', '7', '200'], ['chardev', 'c', '1', '3']] as const) {
        if (spawnSync('mknod', [path.join(src, n), t, maj, min]).status === 0) expectSpecial.push(B(n));
      }
    }
    if (hasPython) {
      spawnSync('python3', ['-c', `import os
p=${JSON.stringify(path.join(src, 'xattr-file'))}
open(p,'w').write('x')
os.setxattr(p,'user.zz',b'')
os.setxattr(p,'user.aa',b'v<>\\xff')`]);
    }
    // a socket: restic 0.14 does not save sockets
    if (hasPython) spawnSync('python3', ['-c', `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(path.join(src, 'sock'))})`]);
    restic('UTC', ['init', '-q']);
  });

  afterAll(() => {
    if (savedTZ === undefined) delete process.env.TZ;
    else process.env.TZ = savedTZ;
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** Backs up src (as ".") with restic in the given TZ and checks every tree blob. */
  function backupAndCompare(tz: string): { trees: number; nodes: Node[] } {
    process.env.TZ = tz;
    restic(tz, ['backup', '-q', '.'], src);
    const snaps = JSON.parse(restic(tz, ['snapshots', '--json']).toString()) as { id: string; time: string }[];
    const snapId = snaps.sort((a, b) => (parseTimeNs(a.time) < parseTimeNs(b.time) ? -1 : 1)).at(-1)!.id;
    const snap = JSON.parse(restic(tz, ['cat', 'snapshot', snapId]).toString()) as { tree: string };
    let trees = 0;
    const all: Node[] = [];
    const walk = (treeId: string, dir: Buffer): void => {
      const bytes = restic(tz, ['cat', 'blob', treeId]);
      trees++;
      expect(sha256(bytes)).toBe(treeId);
      const nodes = decodeTree(bytes);
      all.push(...nodes);
      // (a) decode -> encode reproduces restic's bytes
      expect(encodeTree(nodes).toString('latin1')).toBe(bytes.toString('latin1'));
      // (b) our nodes from lstat, plus content/subtree/xattrs taken from restic, give the same tree id
      const onDisk = fs.readdirSync(dir, { encoding: 'buffer' }).filter((n) => !fs.lstatSync(P(dir, n)).isSocket());
      expect(nodes.map((n) => n.name.toString('hex')).sort()).toEqual(onDisk.map((n) => n.toString('hex')).sort());
      const mine = nodes.map((rn) => {
        const p = P(dir, rn.name);
        const st = fs.lstatSync(p, { bigint: true });
        const lt = st.isSymbolicLink() ? fs.readlinkSync(p, { encoding: 'buffer' }) : undefined;
        const n = nodeFromStat(Buffer.from(rn.name), st, lt, { extendedAttributes: rn.extendedAttributes });
        if (rn.type === 'file') n.content = rn.content;
        if (rn.subtree) n.subtree = rn.subtree;
        return n;
      });
      const enc = encodeTree(mine.reverse());
      expect(enc.toString('latin1')).toBe(bytes.toString('latin1'));
      expect(sha256(enc)).toBe(treeId);
      for (const n of nodes) if (n.type === 'dir') walk(n.subtree!, P(dir, n.name));
    };
    walk(snap.tree, Buffer.from(src));
    return { trees, nodes: all };
  }

  it('UTC: decode/encode and nodeFromStat reproduce every restic tree byte for byte', () => {
    const { trees, nodes } = backupAndCompare('UTC');
    expect(trees).toBe(5);
    const byName = new Map(nodes.map((n) => [n.name.toString('latin1'), n]));
    const get = (s: string | Buffer): Node => byName.get((typeof s === 'string' ? B(s) : s).toString('latin1'))!;
    // spot checks of what restic wrote
    expect(get('fifo').type).toBe('fifo');
    expect(get('fifo').links).toBeUndefined();
    expect(get('setgid-dir').mode).toBe(2151678445);
    expect(get('setgid-dir').size).toBeUndefined();
    expect(get('setgid-dir').links).toBeUndefined();
    expect(get('sticky-dir').mode).toBe(2148532735);
    expect(get('setuid').mode).toBe(8389101);
    expect(get('badlink').linktarget).toEqual(B('\ufffd\ufffdtarget'));
    expect(get('badlink').links).toBe(1n);
    expect(get('empty').content).toEqual([]);
    expect(get('empty').size).toBeUndefined();
    expect(get('hard1').links).toBe(2n);
    expect(get('hard1').inode).toBe(get('hard2').inode);
    expect(get('y1969').mtime).toBe('1969-12-31T23:59:59.5Z');
    expect(get('y1969').atime).toBe('1969-12-31T23:59:59.5Z');
    expect(get('y2100').mtime).toBe('2100-01-02T03:04:05.123456789Z');
    expect(get('y1980').mtime).toBe('1980-01-01T00:00:00Z');
    expect(get('ns').mtime).toBe('2023-05-06T07:08:09.000000001Z');
    expect(get('big').size).toBe(9_000_000n); // > 8 MiB: restic's chunker must cut it
    expect(get('big').content!.length, JSON.stringify(get('big').content)).toBeGreaterThan(1);
    expect(byName.has('sock')).toBe(false);
    if (isRoot) {
      expect(get('unknown-owner').uid).toBe(4242);
      expect(get('unknown-owner').user).toBeUndefined();
      expect(get('unknown-owner').group).toBeUndefined();
    }
    for (const n of expectSpecial) {
      expect(get(n).device).toBeGreaterThan(0n);
      expect(get(n).links).toBe(1n);
    }
    if (hasPython) {
      expect(get('xattr-file').extendedAttributes).toEqual([
        { name: 'user.zz', value: Buffer.alloc(0) },
        { name: 'user.aa', value: B([0x76, 0x3c, 0x3e, 0xff]) },
      ]);
    }
  });

  it('non-UTC zones (offsets, DST, historical offsets with seconds) match restic too', () => {
    for (const tz of ['America/St_Johns', 'Asia/Kolkata']) {
      if (!fs.existsSync(path.join('/usr/share/zoneinfo', tz))) continue;
      const { nodes } = backupAndCompare(tz);
      const y1902 = nodes.find((n) => n.name.equals(B('y1902')))!;
      if (tz === 'Asia/Kolkata') expect(y1902.mtime).toBe('1902-06-01T05:21:10.25+05:21');
    }
  });
});
