import * as path from 'node:path';
import type { Backend } from './backend.js';
import { LocalBackend } from './local.js';

/** Parse a repository location: a path, `local:<path>`; other schemes arrive with their backends. */
export function openBackend(location: string): Backend {
  if (location.startsWith('local:')) return new LocalBackend(path.resolve(location.slice(6)));
  const m = /^([a-z][a-z0-9+.-]*):/.exec(location);
  if (m && m[1] !== 'local' && !/^[a-zA-Z]:[\\/]/.test(location)) {
    throw new Error(`unsupported repository location "${location}" (scheme "${m[1]}:" is not supported yet; use a local path)`);
  }
  return new LocalBackend(path.resolve(location));
}
