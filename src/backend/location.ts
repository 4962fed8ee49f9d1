import * as path from 'node:path';
import type { Backend } from './backend.js';
import { LocalBackend } from './local.js';
import { JottaBackend, type JottaBackendOptions } from './jottacloud/backend.js';
import { isJottaLocation } from './jottacloud/spec.js';

export interface BackendOptions {
  /** options for `jotta:` locations (connections, bandwidth limits, hard delete, logger) */
  jotta?: JottaBackendOptions;
}

let defaults: BackendOptions = {};

/** Options used when openBackend() is called without any (set once by the CLI from its global flags). */
export function setDefaultBackendOptions(o: BackendOptions): void {
  defaults = o;
}

/**
 * Parse a repository location: a path, `local:<path>`, `jotta:<path>` (default Jottacloud
 * account) or `jotta@<account>:<path>`.
 */
export function openBackend(location: string, opts: BackendOptions = defaults): Backend {
  if (location.startsWith('local:')) return new LocalBackend(path.resolve(location.slice(6)));
  if (isJottaLocation(location)) {
    return new JottaBackend(location, { ...(opts.jotta ?? {}) });
  }
  const m = /^([a-z][a-z0-9+.-]*):/.exec(location);
  if (m && m[1] !== 'local' && !/^[a-zA-Z]:[\\/]/.test(location)) {
    throw new Error(`unsupported repository location "${location}" (scheme "${m[1]}:" is not supported yet; use a local path, jotta:<path> or jotta@<account>:<path>)`);
  }
  return new LocalBackend(path.resolve(location));
}
