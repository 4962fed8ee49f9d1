/**
 * The web layer's entry (stub: the browser pages replace this file). The server calls it, after
 * authentication, for every request under `/_/` and for GET/HEAD of a directory when the client
 * accepts text/html; it answers the request and returns true, or returns false to let the server
 * answer (a plain listing for a directory, 404 under `/_/`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { WebContext } from '../context.js';

export async function handleWeb(_ctx: WebContext, _req: IncomingMessage, _res: ServerResponse, _segments: readonly string[]): Promise<boolean> {
  return false;
}
