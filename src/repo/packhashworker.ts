/**
 * Pack hasher thread: SHA-256 (the pack's id) and, when asked, MD5 (what Jottacloud's allocate
 * wants) of buffered packs, read where they are in shared memory, range by range as the main thread
 * copies blobs in. See PackHasher (packhash.ts).
 *
 * Protocol (main → thread): {op:'open', sid, md5} | {op:'update', sid, sab, off, len} |
 *   {op:'final', sid, tail} | {op:'abort', sid}; (thread → main): {op:'digest', sid, sha256, md5?}.
 */
import { createHash, type Hash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import type { HasherReply, HasherRequest } from './packhash.js';

const port = parentPort!;
const open = new Map<number, { sha: Hash; md5: Hash | null }>();

port.on('message', (m: HasherRequest) => {
  switch (m.op) {
    case 'open':
      open.set(m.sid, { sha: createHash('sha256'), md5: m.md5 ? createHash('md5') : null });
      break;
    case 'update': {
      const h = open.get(m.sid);
      if (!h) break;
      const v = new Uint8Array(m.sab, m.off, m.len);
      h.sha.update(v);
      h.md5?.update(v);
      break;
    }
    case 'final': {
      const h = open.get(m.sid);
      open.delete(m.sid);
      if (!h) break;
      h.sha.update(m.tail);
      h.md5?.update(m.tail);
      port.postMessage({ op: 'digest', sid: m.sid, sha256: h.sha.digest('hex'), ...(h.md5 ? { md5: h.md5.digest('hex') } : {}) } satisfies HasherReply);
      break;
    }
    case 'abort':
      open.delete(m.sid);
      break;
    default:
      break;
  }
});
