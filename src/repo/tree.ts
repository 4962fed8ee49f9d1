/**
 * Tree blobs of restic repository format v2, byte-identical to restic 0.14.0
 * (Debian build, go1.19). Pure: no I/O.
 *
 * Layers, as restic does it:
 *   name       -> Go strconv.Quote body (quotes stripped) -> Go encoding/json string
 *   linktarget -> Go encoding/json string (invalid UTF-8 bytes become the escape \ufffd)
 *   times      -> Go time.Time RFC3339Nano in the local zone
 *   uint64s    -> plain decimal integers (bigint here, never JS numbers)
 * The Go formats themselves (quoting, JSON, time, FileMode) live in src/format/; this is the codec.
 */

import { isUtf8 } from 'node:buffer';
import { goCompactJson, goJsonString, lossyUtf8, parseJson, type JVal } from '../format/gojson.js';
import { goQuote, goQuoteBody, goUnquote } from '../format/goquote.js';
import { validateTime } from '../format/gotime.js';
import { ID_RE } from '../util/ids.js';

export type NodeType =
  | 'file'
  | 'dir'
  | 'symlink'
  | 'dev'
  | 'chardev'
  | 'fifo'
  | 'socket'
  | 'irregular'
  | (string & {});

export interface ExtendedAttribute {
  name: string;
  /** null is written as JSON null (Go nil slice); an empty Buffer as "". */
  value: Buffer | null;
}

export interface Node {
  /** Raw name bytes (not quoted). */
  name: Buffer;
  type: NodeType;
  /** Go FileMode as an unsigned 32-bit number; 0 is omitted. */
  mode: number;
  /** RFC3339Nano strings, exactly as they appear in the JSON. */
  mtime: string;
  atime: string;
  ctime: string;
  uid: number;
  gid: number;
  user?: string;
  group?: string;
  inode?: bigint;
  deviceId?: bigint;
  size?: bigint;
  links?: bigint;
  /** Raw link target bytes. On decode: linktarget_raw when present, else the (lossy) linktarget string. */
  linktarget?: Buffer;
  /** Only set when decoded from a tree that had `linktarget_raw` (restic 0.16+); written back as is. */
  linktargetRaw?: Buffer;
  /**
   * Decoder only: the exact JSON literal (with quotes) of `linktarget`, kept when re-encoding the
   * decoded bytes would not reproduce it (restic 0.14 writes each invalid UTF-8 byte as the escape
   * \ufffd, which decodes to the same bytes as a genuine U+FFFD). encodeTree writes it verbatim as
   * long as it still denotes `linktarget`; it is ignored otherwise.
   */
  linktargetJson?: string;
  extendedAttributes?: ExtendedAttribute[];
  /** restic 0.17+: name -> raw (compact) JSON text of the value. */
  genericAttributes?: Record<string, string>;
  device?: bigint;
  /** Hex blob ids; `[]` for an empty file, null/undefined (written as null) for non-files. */
  content?: string[] | null;
  subtree?: string;
  error?: string;
}
// ---------------------------------------------------------------------------------------------
// Tree encoding

/** Returns the nodes sorted by raw name bytes; throws on duplicate or empty names (restic refuses both). */
function sortNodes(nodes: readonly Node[]): Node[] {
  const sorted = [...nodes].sort((x, y) => Buffer.compare(x.name, y.name));
  for (let i = 0; i < sorted.length; i++) {
    if (sorted[i]!.name.length === 0) throw new Error('tree: node with empty name');
    if (i > 0 && Buffer.compare(sorted[i - 1]!.name, sorted[i]!.name) === 0) {
      throw new Error(`tree: duplicate node name ${goQuote(sorted[i]!.name)}`);
    }
  }
  return sorted;
}

const UINT64_MAX = (1n << 64n) - 1n;

function u32(v: number, field: string): string {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`tree: ${field} is not a uint32: ${v}`);
  return String(v);
}

function u64(v: bigint, field: string): string {
  if (typeof v !== 'bigint' || v < 0n || v > UINT64_MAX) throw new RangeError(`tree: ${field} is not a uint64: ${String(v)}`);
  return v.toString();
}

function idStr(id: string, field: string): string {
  if (!ID_RE.test(id)) throw new Error(`tree: ${field} is not a lower-case 64-digit hex id: ${id}`);
  return '"' + id + '"';
}

const ZERO_TIME = '0001-01-01T00:00:00Z';

function linktargetLiteral(n: Node, target: Buffer): string {
  if (n.linktargetJson !== undefined) {
    try {
      const v = parseJson(Buffer.from(n.linktargetJson, 'utf8'));
      if (v.k === 'str' && v.b.equals(lossyUtf8(target))) return n.linktargetJson;
    } catch {
      // stale or invalid literal: fall through
    }
  }
  return goJsonString(target);
}

/** One node as restic 0.14 serialises it (json.Marshal of restic.Node). */
export function encodeNode(n: Node): string {
  let o = '{"name":' + goJsonString(goQuoteBody(n.name));
  o += ',"type":' + goJsonString(n.type);
  if (n.mode) o += ',"mode":' + u32(n.mode, 'mode');
  o += ',"mtime":' + goJsonString(n.mtime || ZERO_TIME);
  o += ',"atime":' + goJsonString(n.atime || ZERO_TIME);
  o += ',"ctime":' + goJsonString(n.ctime || ZERO_TIME);
  o += ',"uid":' + u32(n.uid ?? 0, 'uid');
  o += ',"gid":' + u32(n.gid ?? 0, 'gid');
  if (n.user) o += ',"user":' + goJsonString(n.user);
  if (n.group) o += ',"group":' + goJsonString(n.group);
  if (n.inode) o += ',"inode":' + u64(n.inode, 'inode');
  if (n.deviceId) o += ',"device_id":' + u64(n.deviceId, 'device_id');
  if (n.size) o += ',"size":' + u64(n.size, 'size');
  if (n.links) o += ',"links":' + u64(n.links, 'links');
  if (n.linktarget && n.linktarget.length > 0) o += ',"linktarget":' + linktargetLiteral(n, n.linktarget);
  if (n.linktargetRaw && n.linktargetRaw.length > 0) o += ',"linktarget_raw":"' + n.linktargetRaw.toString('base64') + '"';
  if (n.extendedAttributes && n.extendedAttributes.length > 0) {
    o += ',"extended_attributes":[';
    n.extendedAttributes.forEach((a, i) => {
      if (i > 0) o += ',';
      o += '{"name":' + goJsonString(a.name) + ',"value":' + (a.value === null ? 'null' : '"' + a.value.toString('base64') + '"') + '}';
    });
    o += ']';
  }
  if (n.genericAttributes) {
    const keys = Object.keys(n.genericAttributes).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    if (keys.length > 0) {
      o += ',"generic_attributes":{';
      keys.forEach((k, i) => {
        const raw = Buffer.from(n.genericAttributes![k]!, 'utf8');
        o += (i > 0 ? ',' : '') + goJsonString(k) + ':' + goCompactJson(raw, 0, raw.length);
      });
      o += '}';
    }
  }
  if (n.device) o += ',"device":' + u64(n.device, 'device');
  if (n.content === undefined || n.content === null) o += ',"content":null';
  else o += ',"content":[' + n.content.map((id) => idStr(id, 'content')).join(',') + ']';
  if (n.subtree !== undefined) o += ',"subtree":' + idStr(n.subtree, 'subtree');
  if (n.error) o += ',"error":' + goJsonString(n.error);
  return o + '}';
}

/**
 * The tree blob bytes restic 0.14 writes: `{"nodes":[...]}` + "\n", compact, nodes sorted by raw
 * name bytes (duplicates and empty names throw). The tree id is SHA-256 of these bytes.
 */
export function encodeTree(nodes: readonly Node[]): Buffer {
  const sorted = sortNodes(nodes);
  return Buffer.from('{"nodes":[' + sorted.map(encodeNode).join(',') + ']}\n', 'utf8');
}

// ---------------------------------------------------------------------------------------------
// Tree decoding

function fieldMap(obj: JVal & { k: 'obj' }): Map<string, JVal> {
  // Go matches keys exactly first, then case-insensitively; the last duplicate wins.
  const exact = new Map<string, JVal>();
  const folded = new Map<string, JVal>();
  for (const [k, v] of obj.entries) {
    exact.set(k, v);
    folded.set(k.toLowerCase(), v);
  }
  const res = new Map<string, JVal>(folded);
  for (const [k, v] of exact) res.set(k, v);
  return res;
}

function typeErr(field: string, want: string): never {
  throw new TypeError(`tree: field ${field} is not ${want}`);
}

function getStr(v: JVal | undefined, field: string): Buffer | undefined {
  if (v === undefined || (v.k === 'lit' && v.v === null)) return undefined;
  if (v.k !== 'str') typeErr(field, 'a string');
  return v.b;
}

function getUint(v: JVal | undefined, field: string, bits: 32 | 64): bigint | undefined {
  if (v === undefined || (v.k === 'lit' && v.v === null)) return undefined;
  if (v.k !== 'num' || !/^\d+$/.test(v.t)) typeErr(field, `a uint${bits}`);
  const n = BigInt(v.t);
  if (n >= 1n << BigInt(bits)) typeErr(field, `a uint${bits} (overflow)`);
  return n;
}

function getId(v: JVal, field: string): string {
  if (v.k !== 'str') typeErr(field, 'a blob id');
  const s = v.b.toString('utf8').toLowerCase();
  if (!ID_RE.test(s)) typeErr(field, 'a 64-digit hex id');
  return s;
}

/** standard padded base64 (both decoders check xattr values with it) */
const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

function getBase64(v: JVal | undefined, field: string): Buffer | null | undefined {
  if (v === undefined) return undefined;
  if (v.k === 'lit' && v.v === null) return null;
  if (v.k !== 'str') typeErr(field, 'base64');
  const s = v.b.toString('latin1').replace(/[\r\n]/g, '');
  if (s.length % 4 !== 0 || !BASE64_RE.test(s)) typeErr(field, 'standard padded base64');
  return Buffer.from(s, 'base64');
}

function decodeNode(src: Uint8Array, v: JVal): Node {
  if (v.k !== 'obj') throw new TypeError('tree: node is not an object');
  const f = fieldMap(v);
  const str = (k: string): string | undefined => getStr(f.get(k), k)?.toString('utf8');
  const time = (k: string): string => {
    const t = str(k);
    if (t === undefined) return ZERO_TIME;
    validateTime(t); // as Go's decoder does
    return t;
  };
  const nameJ = getStr(f.get('name'), 'name');
  const node: Node = {
    name: nameJ === undefined ? Buffer.alloc(0) : Buffer.from(goUnquote(nameJ)),
    type: str('type') ?? '',
    mode: Number(getUint(f.get('mode'), 'mode', 32) ?? 0n),
    mtime: time('mtime'),
    atime: time('atime'),
    ctime: time('ctime'),
    uid: Number(getUint(f.get('uid'), 'uid', 32) ?? 0n),
    gid: Number(getUint(f.get('gid'), 'gid', 32) ?? 0n),
  };
  const user = str('user');
  if (user) node.user = user;
  const group = str('group');
  if (group) node.group = group;
  const u64s: [string, 'inode' | 'deviceId' | 'size' | 'links' | 'device'][] = [
    ['inode', 'inode'],
    ['device_id', 'deviceId'],
    ['size', 'size'],
    ['links', 'links'],
    ['device', 'device'],
  ];
  for (const [k, prop] of u64s) {
    const n = getUint(f.get(k), k, 64);
    if (n) node[prop] = n;
  }
  const raw = getBase64(f.get('linktarget_raw'), 'linktarget_raw');
  const ltV = f.get('linktarget');
  const lt = getStr(ltV, 'linktarget');
  if (raw && raw.length > 0) {
    node.linktargetRaw = raw;
    node.linktarget = Buffer.from(raw);
  } else if (lt && lt.length > 0) {
    node.linktarget = Buffer.from(lt);
  }
  if (lt && lt.length > 0 && ltV && ltV.k === 'str') {
    const literal = Buffer.from(src.subarray(ltV.s, ltV.e)).toString('utf8');
    if (goJsonString(node.linktarget ?? lt) !== literal) node.linktargetJson = literal;
  }
  const xa = f.get('extended_attributes');
  if (xa && !(xa.k === 'lit' && xa.v === null)) {
    if (xa.k !== 'arr') typeErr('extended_attributes', 'an array');
    if (xa.items.length > 0) {
      node.extendedAttributes = xa.items.map((it) => {
        if (it.k !== 'obj') typeErr('extended_attributes[]', 'an object');
        const af = fieldMap(it);
        return {
          name: getStr(af.get('name'), 'extended_attributes.name')?.toString('utf8') ?? '',
          value: getBase64(af.get('value'), 'extended_attributes.value') ?? null,
        };
      });
    }
  }
  const ga = f.get('generic_attributes');
  if (ga && !(ga.k === 'lit' && ga.v === null)) {
    if (ga.k !== 'obj') typeErr('generic_attributes', 'an object');
    if (ga.entries.length > 0) {
      const rec: Record<string, string> = Object.create(null) as Record<string, string>;
      for (const [k, val] of ga.entries) rec[k] = goCompactJson(src, val.s, val.e);
      node.genericAttributes = rec;
    }
  }
  const content = f.get('content');
  if (content === undefined || (content.k === 'lit' && content.v === null)) node.content = null;
  else if (content.k === 'arr') node.content = content.items.map((it) => getId(it, 'content'));
  else typeErr('content', 'an array or null');
  const sub = f.get('subtree');
  if (sub !== undefined && !(sub.k === 'lit' && sub.v === null)) node.subtree = getId(sub, 'subtree');
  const err = str('error');
  if (err) node.error = err;
  return node;
}

/**
 * Parses a tree blob (restic 0.14 or newer, or rustic). uint64 fields stay exact, names are
 * Go-unquoted, unknown fields are ignored, missing ones get Go's zero values. Node order is kept.
 */
export function decodeTree(bytes: Uint8Array, id?: string): Node[] {
  try {
    return decodeTreeFast(bytes) ?? decodeTreeExact(bytes);
  } catch (e) {
    // one line that names the tree (the decoders' messages say what and where, not which tree)
    if (id === undefined) throw e;
    throw new Error(`tree ${id}: ${(e as Error).message.replace(/^tree: /, '')}`);
  }
}

/**
 * keys a node may have for the fast path: what restic 0.14 writes for every node type (a tree with
 * one symlink or one xattr used to take the exact parser, ~4x slower: on /usr/share that was a
 * third of all trees)
 */
const FAST_KEYS = new Set(['name', 'type', 'mode', 'mtime', 'atime', 'ctime', 'uid', 'gid', 'user', 'group', 'inode', 'device_id', 'size', 'links', 'linktarget', 'extended_attributes', 'device', 'content', 'subtree']);
/** a quoted name body that needs unquoting (else it is its own bytes, as most names are) */
const NEEDS_UNQUOTE = /[\\"\x00-\x1f\x7f]/;
const U32 = 0xffffffff;

/**
 * The common case through the native JSON.parse: exact lower-case keys from FAST_KEYS only, no
 * number that could lose precision, valid UTF-8. Returns null whenever anything is unusual; the
 * exact parser then decides (and reports errors) with Go's full semantics.
 */
export function decodeTreeFast(bytes: Uint8Array): Node[] | null {
  // No scan for long numbers first: JSON.parse rounds only numbers of 2^53 or more, and every number
  // the fast path takes is checked against a maximum of at most 2^53 - 1 (fUint), so a rounded one
  // always sends the tree to the exact parser (the scan was a JS loop over every byte of every tree)
  if (!isUtf8(bytes)) return null;
  let root: unknown;
  try {
    root = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('utf8'));
  } catch {
    return null;
  }
  if (typeof root !== 'object' || root === null || Array.isArray(root)) return null;
  for (const k in root) if (k !== 'nodes') return null;
  const list = (root as { nodes?: unknown }).nodes;
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) return null;
  const out: Node[] = new Array<Node>(list.length);
  // per node: no closures, no key arrays, no temporary arrays (a re-run decodes every parent
  // tree; each per-node allocation here was a measurable share of its garbage collection)
  for (let i = 0; i < list.length; i++) {
    const n = fastNode(list[i]);
    if (n === null) return null;
    out[i] = n;
  }
  return out;
}

/** a string field: the string, undefined when absent or null, FAIL when anything else */
const FAIL = Symbol('fail');
function fStr(v: unknown): string | undefined | typeof FAIL {
  if (v === undefined || v === null) return undefined;
  return typeof v === 'string' ? v : FAIL;
}

/** a uint field: 0 when absent or null, -1 when not an integer in [0, max] */
function fUint(v: unknown, max: number): number {
  if (v === undefined || v === null) return 0;
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max ? v : -1;
}

function fTime(v: unknown): string | typeof FAIL {
  const t = fStr(v);
  if (t === FAIL) return FAIL;
  if (t === undefined) return ZERO_TIME;
  validateTime(t); // as Go's decoder does
  return t;
}

function fId(v: unknown): string | typeof FAIL {
  if (typeof v !== 'string') return FAIL;
  if (ID_RE.test(v)) return v;
  const id = v.toLowerCase();
  return ID_RE.test(id) ? id : FAIL;
}

function fastNode(o: unknown): Node | null {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return null;
  const r = o as Record<string, unknown>;
  for (const k in r) if (!FAST_KEYS.has(k)) return null;
  const name = fStr(r['name']);
  const type = fStr(r['type']);
  const user = fStr(r['user']);
  const group = fStr(r['group']);
  if (name === FAIL || type === FAIL || user === FAIL || group === FAIL) return null;
  const mtime = fTime(r['mtime']);
  const atime = fTime(r['atime']);
  const ctime = fTime(r['ctime']);
  if (mtime === FAIL || atime === FAIL || ctime === FAIL) return null;
  const mode = fUint(r['mode'], U32);
  const uid = fUint(r['uid'], U32);
  const gid = fUint(r['gid'], U32);
  if (mode < 0 || uid < 0 || gid < 0) return null;
  const M = Number.MAX_SAFE_INTEGER;
  const inode = fUint(r['inode'], M);
  const deviceId = fUint(r['device_id'], M);
  const size = fUint(r['size'], M);
  const links = fUint(r['links'], M);
  const device = fUint(r['device'], M);
  // before the name: a number JSON.parse may have rounded hands the tree to the exact parser first
  if (inode < 0 || deviceId < 0 || size < 0 || links < 0 || device < 0) return null;
  const node: Node = {
    name: name === undefined ? Buffer.alloc(0) : NEEDS_UNQUOTE.test(name) ? Buffer.from(goUnquote(Buffer.from(name, 'utf8'))) : Buffer.from(name, 'utf8'),
    type: (type ?? '') as NodeType, mode, mtime, atime, ctime, uid, gid,
  };
  if (user) node.user = user;
  if (group) node.group = group;
  if (inode) node.inode = BigInt(inode);
  if (deviceId) node.deviceId = BigInt(deviceId);
  if (size) node.size = BigInt(size);
  if (links) node.links = BigInt(links);
  if (device) node.device = BigInt(device);
  const lt = fStr(r['linktarget']);
  if (lt === FAIL) return null;
  if (lt) {
    // U+FFFD may stand for an invalid byte restic 0.14 escaped (\ufffd): the exact parser keeps
    // that literal; anything else is a plain UTF-8 string
    if (lt.includes('\ufffd')) return null;
    node.linktarget = Buffer.from(lt, 'utf8');
  }
  const xa = r['extended_attributes'];
  if (xa !== undefined && xa !== null) {
    if (!Array.isArray(xa)) return null;
    const attrs: ExtendedAttribute[] = [];
    for (const a of xa as unknown[]) {
      if (typeof a !== 'object' || a === null || Array.isArray(a)) return null;
      const ar = a as Record<string, unknown>;
      for (const k in ar) if (k !== 'name' && k !== 'value') return null;
      const an = ar['name'] ?? '';
      const av = ar['value'];
      if (typeof an !== 'string') return null;
      if (av === undefined || av === null) { attrs.push({ name: an, value: null }); continue; }
      if (typeof av !== 'string' || av.length % 4 !== 0 || !BASE64_RE.test(av)) return null;
      attrs.push({ name: an, value: Buffer.from(av, 'base64') });
    }
    if (attrs.length > 0) node.extendedAttributes = attrs;
  }
  const content = r['content'];
  if (content === undefined || content === null) node.content = null;
  else if (Array.isArray(content)) {
    const ids = new Array<string>(content.length);
    for (let i = 0; i < content.length; i++) {
      const id = fId(content[i]);
      if (id === FAIL) return null;
      ids[i] = id;
    }
    node.content = ids;
  } else return null;
  const sub = r['subtree'];
  if (sub !== undefined && sub !== null) {
    const id = fId(sub);
    if (id === FAIL) return null;
    node.subtree = id;
  }
  return node;
}

/** The exact parser: Go's encoding/json semantics (case-insensitive keys, exact uint64s, …). */
export function decodeTreeExact(bytes: Uint8Array): Node[] {
  const root = parseJson(bytes, 'tree JSON');
  if (root.k !== 'obj') throw new TypeError('tree: top-level value is not an object');
  const nodes = fieldMap(root).get('nodes');
  if (nodes === undefined || (nodes.k === 'lit' && nodes.v === null)) return [];
  if (nodes.k !== 'arr') typeErr('nodes', 'an array');
  return nodes.items.map((it) => decodeNode(bytes, it));
}
