/**
 * Chunking worker: reads files, cuts them with FastCDC, hashes every chunk, and — when the main
 * thread says the blob is new — compresses and encrypts it. Runs in a worker_thread so both cores work.
 *
 * Protocol (main → worker): {op:'file', job, path: Uint8Array}, {op:'want', job, seq, want}, {op:'ack', bytes}
 * (worker → main): {op:'chunk', job, seq, id, len}, {op:'blob', job, seq, id, stored, ulen},
 * {op:'done', job, size}, {op:'error', job, message, code}
 */
import { parentPort, workerData } from 'node:worker_threads';
import { promises as fsp } from 'node:fs';
import { createHash } from 'node:crypto';
import { FastCDC, type ChunkerParams } from '../chunker/fastcdc.js';
import { makeMasterKey, seal } from '../crypto/crypto.js';
import { zstdCompress, type CompressionMode } from '../repo/zstd.js';

export interface WorkerInit {
  key: { encrypt: Uint8Array; macK: Uint8Array; macR: Uint8Array };
  chunker: ChunkerParams;
  compression: CompressionMode;
  /** pause reading while this many chunk bytes are unanswered / unacknowledged */
  maxOutstanding: number;
}

const init = workerData as WorkerInit;
const key = makeMasterKey(init.key.encrypt, init.key.macK, init.key.macR);
const cdc = new FastCDC(init.chunker);
const port = parentPort!;
const READ_SIZE = 2 * 1024 * 1024;

const pending = new Map<string, { chunk: Buffer; id: string }>();
let outstanding = 0;
let waiters: (() => void)[] = [];

function release(bytes: number): void {
  outstanding -= bytes;
  if (outstanding < init.maxOutstanding && waiters.length) {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  }
}

async function room(): Promise<void> {
  while (outstanding >= init.maxOutstanding) await new Promise<void>((r) => waiters.push(r));
}

function emit(job: number, seq: number, chunk: Buffer): void {
  const id = createHash('sha256').update(chunk).digest('hex');
  pending.set(`${job}:${seq}`, { chunk, id });
  outstanding += chunk.length;
  port.postMessage({ op: 'chunk', job, seq, id, len: chunk.length });
}

function encode(job: number, seq: number, want: boolean): void {
  const k = `${job}:${seq}`;
  const p = pending.get(k);
  if (!p) return;
  pending.delete(k);
  const { chunk, id } = p;
  if (!want) { release(chunk.length); return; }
  let stored: Buffer;
  let ulen = 0;
  if (init.compression === 'off') {
    stored = seal(key, chunk);
  } else {
    stored = seal(key, zstdCompress(chunk, init.compression));
    ulen = chunk.length;
  }
  // the bytes stay counted until the main thread acknowledges the blob (backpressure to packing/upload)
  const ab = stored.buffer.byteLength === stored.length ? stored.buffer : new Uint8Array(stored).buffer;
  port.postMessage({ op: 'blob', job, seq, id, stored: ab, ulen, len: chunk.length }, [ab as ArrayBuffer]);
}

async function chunkFile(job: number, path: Buffer): Promise<void> {
  const fh = await fsp.open(path, 'r');
  try {
    const max = init.chunker.max;
    let buf = Buffer.allocUnsafe(0);
    let start = 0;
    let end = 0;
    let seq = 0;
    let size = 0;
    let eof = false;
    const readPiece = async (): Promise<Buffer | null> => {
      const b = Buffer.allocUnsafe(READ_SIZE);
      const { bytesRead } = await fh.read(b, 0, READ_SIZE, null);
      return bytesRead === 0 ? null : b.subarray(0, bytesRead);
    };
    let next: Promise<Buffer | null> | null = readPiece();
    while (!eof || start < end) {
      if (!eof && end - start < max) {
        const piece = await next!;
        if (piece === null) { eof = true; next = null; } else {
          next = readPiece();
          size += piece.length;
          if (end + piece.length > buf.length) {
            const need = end - start + piece.length;
            if (need <= buf.length && start > 0) {
              buf.copyWithin(0, start, end);
            } else {
              const nb = Buffer.allocUnsafe(Math.max(need, Math.min(max + READ_SIZE, need * 2)));
              buf.copy(nb, 0, start, end);
              buf = nb;
            }
            end -= start;
            start = 0;
          }
          piece.copy(buf, end);
          end += piece.length;
          continue;
        }
      }
      while (end - start >= max || (eof && start < end)) {
        const n = cdc.cut(buf, start, end);
        await room();
        emit(job, seq++, Buffer.from(buf.subarray(start, start + n)));
        start += n;
      }
    }
    port.postMessage({ op: 'done', job, size, chunks: seq });
  } finally {
    await fh.close();
  }
}

port.on('message', (m: { op: string; job: number; seq: number; want: boolean; path: Uint8Array; bytes: number }) => {
  switch (m.op) {
    case 'file':
      chunkFile(m.job, Buffer.from(m.path)).catch((e: NodeJS.ErrnoException) => {
        port.postMessage({ op: 'error', job: m.job, message: e.message, code: e.code ?? '' });
      });
      break;
    case 'want':
      encode(m.job, m.seq, m.want);
      break;
    case 'ack':
      release(m.bytes);
      break;
    default:
      break;
  }
});
