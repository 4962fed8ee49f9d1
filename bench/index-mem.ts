/**
 * Memory and load time of the in-memory index (src/repo/index.ts) for N blobs:
 *   node dist/bench/index-mem.js --blobs 5000000 [--dir DIR]
 * It writes real index files with the project's writer (Repository.saveUnpacked of encodeIndex:
 * compressed, encrypted) into a local repository in a temp dir, 50,000 blobs per file as restic
 * does, then opens the repository afresh and loads the index through the normal path
 * (Repository.loadIndex: read, decrypt, decompress, decodeIndex, MasterIndex.addPack), and reports
 * the load time and what the loaded index holds after a full GC (heap + typed arrays, and RSS).
 * Blob ids are random; every 16th blob is a tree; 4 MiB-ish packs of ~1,000 blobs.
 * With --dir DIR holding a repository written by an earlier run (same --blobs), the writing is skipped.
 * loadCpuSeconds is the process's CPU time during the load (the machine may be shared). Then 1M has() calls (half known ids, half unknown) are timed (has data, then has tree when not found): lookupNsPerProbe.
 */
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Repository } from '../src/repo/repository.js';
import { encodeIndex, type IndexFilePack } from '../src/repo/index.js';
import { LocalBackend } from '../src/backend/local.js';
import type { PackedBlob } from '../src/repo/pack.js';
import { setMmapThreshold, setTrimThreshold } from '../src/native/native.js';

const MiB = 1024 * 1024;
const PER_FILE = 50_000;
const PER_PACK = 1_000;
const PASSWORD = Buffer.from('index-mem');

function args(): { blobs: number; dir: string | null; mallocDefault: boolean } {
  const a = process.argv.slice(2);
  let blobs = 1_000_000;
  let dir: string | null = null;
  let mallocDefault = false;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '--blobs') blobs = Number(a[++i]);
    else if (a[i] === '--dir') dir = a[++i] ?? null;
    else if (a[i] === '--malloc-default') mallocDefault = true;
    else { process.stderr.write(`index-mem: unknown option ${a[i]}\nusage: node dist/bench/index-mem.js --blobs N [--dir DIR] [--malloc-default]\n`); process.exit(1); }
  }
  if (!Number.isInteger(blobs) || blobs < 1) { process.stderr.write('index-mem: --blobs needs a whole number ≥ 1\n'); process.exit(1); }
  return { blobs, dir, mallocDefault };
}

/** a settled heap: several full collections (weak refs and finalisers need more than one) */
function settle(): NodeJS.MemoryUsage {
  // without node --expose-gc: the flag set at run time, gc taken from a fresh context
  const gc = (globalThis as { gc?: () => void }).gc ?? ((): () => void => {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as () => void;
  })();
  for (let i = 0; i < 4; i++) gc();
  return process.memoryUsage();
}

async function main(): Promise<void> {
  const o = args();
  // glibc malloc as the CLI sets it (src/cli/main.ts: fixed 16 MiB mmap threshold, 1 MiB trim), unless
  // --malloc-default: glibc's dynamic threshold then keeps the load's freed file buffers resident
  const malloc = o.mallocDefault ? 'glibc default' : (setTrimThreshold(1024 * 1024) && setMmapThreshold(16 * 1024 * 1024) ? 'as the CLI' : 'glibc default (no addon)');
  const dir = o.dir ? path.resolve(o.dir) : await fsp.mkdtemp(path.join(os.tmpdir(), 'jbackup-index-mem-'));
  const kdf = { N: 1024, r: 8, p: 1 };
  try {
    // write the index files (unless --dir holds them from an earlier run)
    const t0 = process.hrtime.bigint();
    const reuse = !!o.dir && await fsp.stat(path.join(dir, 'config')).then(() => true, () => false);
    const w = reuse ? null : await Repository.init(new LocalBackend(dir), PASSWORD, { kdf });
    let files = 0;
    let bytes = 0;
    for (let done = 0; w && done < o.blobs;) {
      const packs: IndexFilePack[] = [];
      const inFile = Math.min(PER_FILE, o.blobs - done);
      for (let k = 0; k < inFile; k += PER_PACK) {
        const blobs: PackedBlob[] = [];
        let offset = 0;
        for (let b = 0; b < Math.min(PER_PACK, inFile - k); b++) {
          const length = 1000 + ((done + k + b) * 7919) % 8000;
          blobs.push({ id: randomBytes(32).toString('hex'), type: (done + k + b) % 16 === 0 ? 'tree' : 'data', offset, length, uncompressedLength: length * 2 });
          offset += length;
        }
        packs.push({ id: randomBytes(32).toString('hex'), blobs });
      }
      const enc = encodeIndex({ packs });
      bytes += enc.length;
      await w.saveUnpacked('index', enc);
      files++;
      done += inFile;
    }
    const writeSec = Number(process.hrtime.bigint() - t0) / 1e9;

    // load them through the normal path, in a repository opened afresh
    const r = await Repository.open(new LocalBackend(dir), PASSWORD);
    r.resetIndex();
    const before = settle();
    const t1 = process.hrtime.bigint();
    const c1 = process.cpuUsage();
    await r.loadIndex();
    const loadSec = Number(process.hrtime.bigint() - t1) / 1e9;
    const c2 = process.cpuUsage(c1);
    const loadCpu = (c2.user + c2.system) / 1e6;
    const peakRss = process.resourceUsage().maxRSS * 1024;
    const after = settle();
    if (r.index.size !== o.blobs) throw new Error(`loaded ${r.index.size} blobs, wrote ${o.blobs}`);
    const held = (after.heapUsed + after.arrayBuffers) - (before.heapUsed + before.arrayBuffers);
    const rss = after.rss - before.rss;
    // lookups: known ids (taken from the index) and random unknown ones, alternating
    const known: string[] = [];
    for (const b of r.index.entries()) { if (known.length >= 500_000) break; known.push(b.id); }
    const probes: string[] = [];
    for (let i = 0; i < 1_000_000; i++) probes.push(i % 2 ? randomBytes(32).toString('hex') : known[(i * 7919) % known.length]!);
    const t2 = process.hrtime.bigint();
    let hits = 0;
    for (const id of probes) if (r.index.has('data', id) || r.index.has('tree', id)) hits++;
    const lookupNs = Number(process.hrtime.bigint() - t2) / probes.length;
    if (hits !== probes.length / 2) throw new Error(`lookups found ${hits} of ${probes.length / 2} known ids`);
    const out = {
      blobs: o.blobs, indexFiles: files, indexJsonMiB: +(bytes / MiB).toFixed(1), writeSeconds: +writeSec.toFixed(1),
      loadSeconds: +loadSec.toFixed(2), loadCpuSeconds: +loadCpu.toFixed(2),
      heldMiB: +(held / MiB).toFixed(1), bytesPerBlob: +(held / o.blobs).toFixed(1),
      rssDeltaMiB: +(rss / MiB).toFixed(1), rssBytesPerBlob: +(rss / o.blobs).toFixed(1),
      peakRssMiB: +(peakRss / MiB).toFixed(0), lookupNsPerProbe: +lookupNs.toFixed(0), malloc, node: process.version,
    };
    process.stdout.write(`${JSON.stringify(out)}\n`);
    // keep the index alive until after the measurement
    if (!r.index.has('data', '0'.repeat(64)) && out.blobs < 0) process.stdout.write('\n');
  } finally {
    if (!o.dir) await fsp.rm(dir, { recursive: true, force: true });
  }
}

main().catch((e: Error) => {
  process.stderr.write(`index-mem: ${e.message}\n`);
  process.exit(1);
});
