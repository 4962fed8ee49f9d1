/**
 * What the HTTP server hands to the web layer (src/serve/web/): the file system, the repository, and
 * the server's own helpers, so pages and downloads answer exactly as WebDAV GET does (ranges, ETags,
 * conditional requests, errors).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Repository } from '../repo/repository.js';
import type { Entry, SnapshotFs } from './vfs.js';

/** URL paths under this first segment belong to the web layer (assets, downloads, find, diff) */
export const RESERVED_SEGMENT = '_';

export interface SendFileOptions {
  /** overrides the type guessed from the name */
  contentType?: string;
}

export interface WebContext {
  vfs: SnapshotFs;
  repo: Repository;
  /** the server's root URL as printed (`http://127.0.0.1:PORT/`) */
  baseUrl: string;
  /** GET/HEAD of a file entry: Range (one range: 206/416), If-Range, If-None-Match, If-Modified-Since (304), ETag, Last-Modified, Accept-Ranges */
  sendFile(req: IncomingMessage, res: ServerResponse, e: Entry, o?: SendFileOptions): Promise<void>;
  /** a status with a one-line text/plain body (HEAD: no body) */
  sendError(req: IncomingMessage, res: ServerResponse, status: number, message: string): void;
  /** the percent-encoded href of a path of escaped names (directories end in "/") */
  hrefOf(segments: readonly string[], dir: boolean): string;
  /** a MIME type from a file name (application/octet-stream when unknown) */
  contentType(name: string): string;
  /** said on the server's standard error (with -v) */
  log(message: string): void;
}
