/**
 * A restic repository on Jottacloud, natively (no rclone in between), in restic's layout
 * (`config`, `keys/<id>`, `data/xx/<id>`, …) below `/<device>/<mountpoint>/<path>` — the same
 * place rclone's jottacloud backend uses, so `restic -r rclone:jotta:<path>` sees it too.
 *
 * - save(): md5 over the in-memory parts (never re-read from disk) → allocate → send the bytes
 *   → check the md5 the server echoes. A dropped upload is re-allocated and the server's
 *   `resume_pos` tail is sent with `Range: bytes=<pos>-<size-1>` (as rclone does, §4.2).
 *   Uploads stay invisible until complete, so writes are atomic.
 * - load(): `mode=bin` with a Range header; a short answer is an error.
 * - list(): one `mode=liststream` request per type (covers data/'s 256 subfolders).
 * - remove(): DELETION POLICY. By default files are moved to the Jottacloud trash (`dl=true`):
 *   recoverable for 30 days, but trashed bytes still count against the quota until the trash is
 *   emptied. With `hardDelete` (CLI `--jotta-hard-delete`, env JBACKUP_JOTTA_HARD_DELETE=1) files
 *   are deleted permanently with JFS `rm=true`, the documented hard-delete form
 *   (rclone's --jottacloud-hard-delete), which frees the quota at once: that is what a prune
 *   that is meant to free space needs. prune always deletes permanently (`remove(h, {permanent})`):
 *   it only deletes what no snapshot references, and its purpose is to free space; forget's
 *   snapshot files go to the trash, so a mistaken forget can be undone until the next prune.
 *   Lock files are always hard-deleted (a trashed lock has
 *   no value and restic rewrites locks every few minutes, which would flood the trash).
 */
import { createHash } from 'node:crypto';
import {
  AlreadyExistsError, type Backend, type BackendProperties, type FileInfo, type FileType, type Handle, type SaveOptions,
  layoutPath, listConfig, NotFoundError, partsOf, type RemoveOptions, totalLength,
} from '../backend.js';
import { ID_RE } from '../../util/ids.js';
import { JottaClient, httpError } from './client.js';
import { formatBytes, JottaError, QuotaExceededError } from './errors.js';
import { Http, type HttpOptions, type HttpResponse, RETRY_STATUSES, RetryableError, sleep, header, parseRetryAfter } from './http.js';
import { encodeName, parseJottaLocation, type JottaSpec } from './spec.js';
import { child, childText, findAll, parseXml, XmlParseError, type XmlElement } from './xml.js';
import { readAccount } from './accounts.js';

export interface JottaBackendOptions extends HttpOptions {
  /** delete permanently (JFS rm=true) instead of moving to the trash */
  hardDelete?: boolean;
}

interface Ctx {
  client: JottaClient;
  /** name-encoded segments of the repository root below the mountpoint */
  root: string[];
}

function short(h: Handle): string {
  const p = layoutPath(h);
  return h.type === 'config' ? p : p.replace(/([0-9a-f]{12})[0-9a-f]{52}$/, '$1…');
}

function hexMd5(parts: readonly Uint8Array[]): string {
  const h = createHash('md5');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

/** `parts` from byte `from` on, without copying. */
function sliceParts(parts: readonly Uint8Array[], from: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let pos = 0;
  for (const p of parts) {
    const end = pos + p.length;
    if (end > from) out.push(from > pos ? p.subarray(from - pos) : p);
    pos = end;
  }
  return out;
}

/** A listed `<file>` that is neither trashed nor an unfinished/corrupt upload. */
function liveCompleted(f: XmlElement): boolean {
  if (f.attrs['deleted'] !== undefined || child(f, 'deleted') !== undefined) return false;
  // (a COMPLETED currentRevision under an INCOMPLETE latestRevision is a live file: a newer upload is pending)
  const states = [childText(f, 'state'), childText(child(f, 'currentRevision'), 'state')];
  for (const st of states) if (st !== undefined && st !== '' && st.toUpperCase() !== 'COMPLETED') return false;
  return true;
}

export class JottaBackend implements Backend {
  readonly properties: BackendProperties;
  private spec: JottaSpec;
  private ctxP: Promise<Ctx> | null = null;
  private hardDelete: boolean;
  /** bytes uploaded by this process (for the quota pre-check) */
  private uploaded = 0;
  private http: Http;

  constructor(readonly location: string, opts: JottaBackendOptions = {}) {
    this.spec = parseJottaLocation(location);
    // save() checks the md5 the server computed over what it stored: no read-back download
    this.properties = { connections: Math.max(1, opts.connections ?? 4), atomicWrites: true, verifiedUploads: true, wantsMd5: true };
    this.hardDelete = !!opts.hardDelete;
    this.http = new Http(opts);
  }

  /** Retry/resume/refresh counters of this backend's HTTP layer. */
  get stats(): Http['stats'] {
    return this.http.stats;
  }

  private ctx(): Promise<Ctx> {
    if (!this.ctxP) {
      const p = (async () => {
        const account = await readAccount(this.spec.account);
        const client = new JottaClient(this.spec.account, account, this.http);
        await client.checkAccess(false);
        const root = this.spec.segments.map((s) => encodeName(s));
        if (this.spec.segments.some((s) => s.includes('%'))) {
          // `%` used to be stored as it is: a repository made that way (possible where no `%XX`
          // follows, which the service refuses) stays where it is, if there is none at the new place
          const legacy = this.spec.segments.map((s) => encodeName(s, false));
          const has = async (segs: string[]): Promise<boolean> => {
            const r = await client.call('stat config', { method: 'GET', url: await client.jfsUrl([...segs, 'config']) });
            return r.status === 200 && !/^\s*(<\?xml[^>]*>\s*)?<file[^>]*\sdeleted=/.test(r.body.toString('utf8'));
          };
          if (!(await has(root)) && (await has(legacy))) {
            this.http.log(`jotta: ${this.location} is an older repository with \`%\` in its folder names; using it where it is`);
            return { client, root: legacy };
          }
        }
        return { client, root };
      })();
      this.ctxP = p;
      p.catch(() => { if (this.ctxP === p) this.ctxP = null; });
    }
    return this.ctxP;
  }

  private segs(c: Ctx, h: Handle): string[] {
    return [...c.root, ...layoutPath(h).split('/')];
  }

  private async fileUrl(c: Ctx, h: Handle, query = ''): Promise<string> {
    return c.client.jfsUrl(this.segs(c, h), query);
  }

  async create(): Promise<void> {
    const c = await this.ctx();
    await c.client.checkAccess(true);
    try {
      await this.stat({ type: 'config', name: 'config' });
      throw new AlreadyExistsError(`repository ${this.location} already exists (config file found)`);
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
    }
    // allocate creates parent folders, so data/00..ff appear with their first pack; the top-level
    // folders are made here so that listings of an empty repository find them
    await Promise.all(['data', 'index', 'keys', 'locks', 'snapshots'].map(async (d) => {
      const url = await c.client.jfsUrl([...c.root, d], 'mkDir=true');
      const r = await c.client.call(`mkdir ${d}`, { method: 'POST', url });
      if (r.status !== 200 && r.status !== 201) throw httpError(r, `creating folder ${d}`);
    }));
  }

  async save(h: Handle, data: Uint8Array | readonly Uint8Array[], opts?: SaveOptions): Promise<void> {
    const c = await this.ctx();
    const customer = await c.client.checkAccess(true);
    const parts = partsOf(data);
    const size = totalLength(parts);
    // (a wrong md5 from the caller cannot store wrong data: the server checks the bytes against it)
    const md5 = opts?.md5 ?? hexMd5(parts);
    if (h.type === 'config') {
      try {
        await this.stat(h);
        throw new AlreadyExistsError('config already exists');
      } catch (e) {
        if (!(e instanceof NotFoundError)) throw e;
      }
    }
    if (h.type === 'data' && customer.quota >= 0 && customer.usage + this.uploaded + size > customer.quota) {
      const fresh = await c.client.customer(true);
      this.uploaded = 0;
      if (fresh.quota >= 0 && fresh.usage + size > fresh.quota) throw c.client.quotaError(fresh, size);
    }
    const segs = this.segs(c, h);
    const allocPath = `/jfs/${[c.client.account.device, c.client.account.mountpoint, ...segs].join('/')}`;
    const label = short(h);
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    // keys in alphabetical order, as rclone sends them
    const allocBody = JSON.stringify({
      bytes: size,
      ...(h.type === 'config' ? { conflict_handler: 'REJECT_CONFLICTS' } : {}),
      created: now,
      md5,
      modified: now,
      path: allocPath,
    });
    const max = this.http.maxAttempts;
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      const ar = await c.client.call(`allocate ${label}`, {
        method: 'POST', url: `${c.client.apiUrl}/files/v1/allocate`,
        headers: { 'content-type': 'application/json', accept: 'application/json' }, body: allocBody,
      });
      if (ar.status !== 200 && ar.status !== 201) {
        if (ar.status === 409 && h.type === 'config') throw new AlreadyExistsError('config already exists');
        throw await this.uploadFailure(c, ar, `allocating ${label}`, size);
      }
      let alloc: { state?: string; upload_url?: string; resume_pos?: number };
      try {
        alloc = JSON.parse(ar.body.toString('utf8')) as typeof alloc;
      } catch {
        throw new JottaError(`allocating ${label}: the answer is not JSON`);
      }
      if (alloc.state === 'COMPLETED') {
        // Server-side dedup: nothing is sent. The service says the content is there, but a
        // COMPLETED answer is only as good as what the file now holds: check its size and md5
        // against ours before counting the pack as saved (a pack that is not what its name says
        // would break the repository silently).
        const st = await this.statXml(c, h);
        if (!st) throw new JottaError(`allocating ${label}: the server answered COMPLETED (already stored) but the file is not there`);
        if (st.size !== size || st.md5 !== md5) {
          throw new JottaError(`allocating ${label}: the server answered COMPLETED (already stored) but the stored file differs from ours (size ${st.size}, md5 ${st.md5}; ours ${size}, ${md5}): not counted as saved`);
        }
        this.uploaded += size;
        return;
      }
      if (typeof alloc.upload_url !== 'string') throw new JottaError(`allocating ${label}: the answer has no upload_url`);
      const pos = typeof alloc.resume_pos === 'number' && alloc.resume_pos > 0 && alloc.resume_pos <= size ? alloc.resume_pos : 0;
      if (pos > 0) {
        this.http.stats.resumes++;
        this.http.log(`jotta: resuming upload of ${label} at byte ${pos} of ${size} (resume_pos from the server)`);
      }
      const headers: Record<string, string> = { 'content-type': 'application/octet-stream', accept: 'application/json' };
      if (pos > 0) headers['range'] = `bytes=${pos}-${size - 1}`;
      let why: string;
      let retryAfter: number | undefined;
      try {
        const ur = await c.client.authed({ method: 'POST', url: alloc.upload_url, headers, body: pos > 0 ? sliceParts(parts, pos) : parts, label: `upload ${label}` });
        if (ur.status >= 200 && ur.status < 300) {
          let res: { md5?: string; bytes?: number };
          try {
            res = JSON.parse(ur.body.toString('utf8')) as typeof res;
          } catch {
            res = {};
          }
          if (typeof res.md5 === 'string' && res.md5.toLowerCase() !== md5) {
            throw new JottaError(`upload of ${label} was corrupted: the server computed md5 ${res.md5}, expected ${md5}`);
          }
          if (typeof res.bytes === 'number' && res.bytes !== size) {
            throw new JottaError(`upload of ${label} was truncated: the server stored ${res.bytes} bytes, expected ${size}`);
          }
          if (typeof res.md5 !== 'string') {
            // no echo to check: make sure the stored revision has our md5
            const st = await this.statXml(c, h);
            if (!st || st.md5 !== md5 || st.size !== size) throw new JottaError(`upload of ${label} could not be verified (no md5 in the answer and a stat disagrees)`);
          }
          this.uploaded += size;
          return;
        }
        const d = httpError(ur, `upload of ${label}`);
        // 420 = incomplete upload; 409 = the previous attempt is still being torn down on the server;
        // a CORRUPT answer drops the partial data server-side, so a new attempt starts over
        if (RETRY_STATUSES.has(ur.status) || ur.status === 420 || ur.status === 409 || d.code === 'CorruptUploadOpenApiException') {
          why = d.message;
          retryAfter = parseRetryAfter(header(ur.headers, 'retry-after'));
        } else {
          throw await this.uploadFailure(c, ur, `uploading ${label}`, size);
        }
      } catch (e) {
        if (!(e instanceof RetryableError)) throw e;
        why = `connection lost: ${e.message}`;
        retryAfter = e.retryAfterMs;
      }
      const wait = this.http.backoff(attempt, retryAfter);
      if (!this.http.mayRetry(attempt, max, started, wait)) throw new JottaError(`upload of ${label} failed after ${attempt} attempt${attempt === 1 ? '' : 's'}: ${why}`);
      this.http.noticeRetry({ label: `upload ${label}`, retry: attempt, maxRetries: max - 1, waitMs: wait, reason: why },
        `jotta: upload of ${label} interrupted (${why}); re-allocating to resume in ${(wait / 1000).toFixed(1)}s (attempt ${attempt + 1}/${max})`);
      await sleep(wait);
    }
  }

  /** A non-retryable upload error: quota and lock problems get their own one-line messages. */
  private async uploadFailure(c: Ctx, r: HttpResponse, what: string, size: number): Promise<Error> {
    const err = httpError(r, what);
    const hint = `${err.code ?? ''} ${err.message}`;
    let fresh;
    try {
      fresh = await c.client.customer(true);
    } catch {
      fresh = null;
    }
    if (fresh) {
      if (fresh.readLocked) return c.client.lockedError(fresh, 'read');
      if (fresh.writeLocked) return c.client.lockedError(fresh, 'write');
      if (fresh.quota >= 0 && fresh.usage + size > fresh.quota) return c.client.quotaError(fresh, size);
    }
    // 460 is what Jottacloud answers an upload that would exceed the quota (jotta-cli and Duplicati
    // users met it as a bare "Invalid statuscode 460")
    if (r.status === 460 || r.status === 507 || /quota|storage ?limit|insufficient ?storage|MaxQuota|NoSpace/i.test(hint)) {
      return new QuotaExceededError(`the Jottacloud account${fresh ? ` ${fresh.username}` : ''} is out of storage quota (HTTP ${r.status} on ${what}${fresh && fresh.quota >= 0 ? `; ${formatBytes(fresh.usage)} used of ${formatBytes(fresh.quota)}` : ''}): free space (prune with --jotta-hard-delete, empty the Jottacloud trash) or upgrade the subscription`);
    }
    return err;
  }

  async load(h: Handle, offset = 0, length?: number, into?: Buffer): Promise<Buffer> {
    const c = await this.ctx();
    if (length === 0) {
      await this.stat(h);
      return Buffer.alloc(0);
    }
    const url = await this.fileUrl(c, h, 'mode=bin');
    const headers: Record<string, string> = {};
    const ranged = offset > 0 || length !== undefined;
    if (ranged) headers['range'] = `bytes=${offset}-${length !== undefined ? offset + length - 1 : ''}`;
    const label = `GET ${short(h)}${ranged ? ` [${headers['range']}]` : ''}`;
    const r = await c.client.call(label, { method: 'GET', url, headers, ...(into ? { into } : {}) });
    if (r.status === 404) throw new NotFoundError(h);
    if (r.status === 416) {
      if (length === undefined) {
        const st = await this.stat(h);
        if (offset === st.size) return Buffer.alloc(0);
      }
      throw new JottaError(`short read of ${layoutPath(h)}: range ${offset}+${length ?? 'rest'} is beyond the end of the file`);
    }
    let body: Buffer;
    if (r.status === 206) {
      const cr = /^bytes (\d+)-/.exec(header(r.headers, 'content-range') ?? '');
      if (cr && Number(cr[1]) !== offset) throw new JottaError(`${label}: the server answered range ${header(r.headers, 'content-range')}`);
      body = r.body;
    } else if (r.status === 200) {
      body = ranged ? r.body.subarray(offset, length !== undefined ? offset + length : undefined) : r.body;
    } else {
      throw httpError(r, `reading ${layoutPath(h)}`);
    }
    if (length !== undefined && body.length !== length) {
      throw new JottaError(`short read of ${layoutPath(h)}: wanted ${length} bytes at ${offset}, got ${body.length}`);
    }
    return body;
  }

  /** The file's current COMPLETED revision, or null when it does not exist (or is trashed/incomplete). */
  private async statXml(c: Ctx, h: Handle): Promise<{ size: number; md5: string } | null> {
    const url = await this.fileUrl(c, h);
    const r = await c.client.call(`stat ${short(h)}`, { method: 'GET', url });
    if (r.status === 404) return null;
    if (r.status !== 200) throw httpError(r, `stat ${layoutPath(h)}`);
    const x = parseXml(r.body.toString('utf8'));
    if (x.name !== 'file' || x.attrs['deleted'] !== undefined) return null;
    const rev = child(x, 'currentRevision');
    if (!rev || childText(rev, 'state') !== 'COMPLETED') return null;
    const size = Number(childText(rev, 'size') ?? NaN);
    if (!Number.isSafeInteger(size)) throw new JottaError(`stat ${layoutPath(h)}: no size in the answer`);
    return { size, md5: (childText(rev, 'md5') ?? '').toLowerCase() };
  }

  async stat(h: Handle): Promise<FileInfo> {
    const c = await this.ctx();
    const st = await this.statXml(c, h);
    if (!st) throw new NotFoundError(h);
    return { name: h.name, size: st.size };
  }

  async list(type: FileType): Promise<FileInfo[]> {
    if (type === 'config') return listConfig(this);
    const c = await this.ctx();
    if (type !== 'data') return this.listFolder(c, [type], `list ${type}`);
    try {
      // (a few attempts only: a listing too large for the service fails every time)
      return await this.listFolder(c, ['data'], 'list data', Math.min(3, this.http.maxAttempts));
    } catch (e) {
      // One request for every pack of a large repository has been answered with a lasting 500
      // (rclone issue 5639: "packet too large"): then the 256 data/xx folders one by one.
      if (!(e instanceof JottaError) || e.status === undefined || e.status < 500) throw e;
      this.http.log(`jotta: listing data/ in one request failed (${e.message}); listing its 256 folders one by one`);
      const subs = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
      const out: FileInfo[] = [];
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < subs.length) {
          const sub = subs[next++]!;
          out.push(...(await this.listFolder(c, ['data', sub], `list data/${sub}`)));
        }
      };
      await Promise.all(Array.from({ length: this.properties.connections }, worker));
      return out;
    }
  }

  /**
   * The repository files in `<root>/<folder…>` and, for data/, one level below it: one
   * `mode=liststream` request (retried when the stream is cut short or its counts disagree).
   */
  private async listFolder(c: Ctx, folder: string[], label: string, attempts?: number): Promise<FileInfo[]> {
    const url = await c.client.jfsUrl([...c.root, ...folder], 'mode=liststream');
    // stream paths are /<mountpoint>/<root…>/<folder…>[/<sub>]: skip that many leading segments
    const skip = 1 + c.root.length + folder.length;
    // data/ files live one level down (data/xx/<id>); the others directly in their folder
    const depth = folder.length === 1 && folder[0] === 'data' ? 1 : 0;
    return this.http.retry(label, async () => {
      const r = await c.client.call(label, { method: 'GET', url }, attempts);
      if (r.status === 404) return [];
      if (r.status !== 200) throw httpError(r, `listing ${folder.join('/')}`);
      let doc;
      try {
        doc = parseXml(r.body.toString('utf8'));
      } catch (e) {
        if (e instanceof XmlParseError) throw new RetryableError(`listing ${folder.join('/')}: incomplete answer (${e.message})`);
        throw e;
      }
      const files = findAll(doc, 'file');
      const stats = findAll(doc, 'stats')[0];
      const expect = stats ? Number(childText(stats, 'files') ?? NaN) : NaN;
      if (Number.isFinite(expect) && expect !== files.length) {
        throw new RetryableError(`listing ${folder.join('/')}: the stream has ${files.length} files but its stats say ${expect}`);
      }
      const out: FileInfo[] = [];
      for (const f of files) {
        // Only live, complete files are repository files. Listings have been seen to carry trashed
        // entries (a `deleted` attribute, as in every other JFS document) and uploads that never
        // finished (a revision state other than COMPLETED): a trashed lock must not block, and a
        // half-uploaded pack must not be taken for a pack.
        if (!liveCompleted(f)) continue;
        const name = childText(f, 'filename') ?? '';
        if (!ID_RE.test(name)) continue;
        const dir = (childText(f, 'path') ?? '').split('/').filter((s) => s !== '').slice(skip);
        if (dir.length !== depth) continue;
        const size = Number(childText(f, 'size') ?? NaN);
        if (!Number.isSafeInteger(size)) continue;
        out.push({ name, size });
      }
      return out;
    }, 3);
  }

  async remove(h: Handle, opts: RemoveOptions = {}): Promise<void> {
    const c = await this.ctx();
    await c.client.checkAccess(true);
    // a trashed file still answers 200 to dl/rm: stat first so that a missing file is NotFoundError
    await this.stat(h);
    const hard = this.hardDelete || !!opts.permanent || h.type === 'locks';
    const url = await this.fileUrl(c, h, hard ? 'rm=true' : 'dl=true');
    const r = await c.client.call(`${hard ? 'delete' : 'trash'} ${short(h)}`, { method: 'POST', url });
    if (r.status === 404) throw new NotFoundError(h);
    if (r.status !== 200 && r.status !== 204) throw httpError(r, `deleting ${layoutPath(h)}`);
  }

  async close(): Promise<void> {
    await this.http.close();
  }
}
