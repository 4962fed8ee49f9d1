/**
 * Opening and creating a repository for library callers and the CLI: a location string (a path,
 * local:, jotta:…) or a Backend, and a password. The caller closes what it opened (closeRepository).
 */
import { openBackend, type BackendOptions } from '../backend/location.js';
import type { Backend } from '../backend/backend.js';
import type { KdfParams } from '../repo/kdf.js';
import { RepoNotFoundError, UserError } from '../repo/errors.js';
import { Repository, type RepoOptions } from '../repo/repository.js';
import { formatSystemError, isSystemError } from '../util/syserr.js';

export interface OpenOptions extends RepoOptions {
  /** the key file to try first */
  keyHint?: string;
  /** options for the backend when `location` is a string */
  backend?: BackendOptions;
  /** the location as messages name it, when a Backend is given */
  name?: string;
  /** told of things worth saying that are no error (a snapshot file that cannot be read) */
  warn?: (message: string) => void;
}

export interface InitOptions extends RepoOptions {
  backend?: BackendOptions;
  name?: string;
  /** scrypt parameters of the first key (default: restic's) */
  kdf?: KdfParams;
}

function password(p: string | Uint8Array): Buffer {
  const b = typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p);
  if (b.length === 0) throw new UserError('an empty password is not a password');
  return b;
}

function backendOf(location: string | Backend, o: { backend?: BackendOptions }): Backend {
  return typeof location === 'string' ? (o.backend ? openBackend(location, o.backend) : openBackend(location)) : location;
}

const where = (location: string | Backend, o: { name?: string }) => (typeof location === 'string' ? location : o.name ?? 'the given backend');

export async function openRepository(location: string | Backend, pw: string | Uint8Array, o: OpenOptions = {}): Promise<Repository> {
  const backend = backendOf(location, o);
  let repo: Repository;
  try {
    repo = await Repository.open(backend, password(pw), o);
  } catch (e) {
    if (typeof location === 'string') await backend.close().catch(() => {});
    // a file where the repository's directory should be (or on its path)
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') throw new RepoNotFoundError(`repository ${where(location, o)} does not exist: ${where(location, o)} or a directory above it is a file`);
    throw e;
  }
  if (o.warn) repo.warn = o.warn;
  return repo;
}

export async function initRepository(location: string | Backend, pw: string | Uint8Array, o: InitOptions = {}): Promise<Repository> {
  const backend = backendOf(location, o);
  try {
    return await Repository.init(backend, password(pw), o);
  } catch (e) {
    if (typeof location === 'string') await backend.close().catch(() => {});
    if (isSystemError(e)) throw new UserError(`create repository at ${where(location, o)} failed: ${formatSystemError(e)}`);
    throw e;
  }
}

/** close the repository's backend (connections, timers) */
export async function closeRepository(repo: Repository): Promise<void> {
  await repo.backend.close();
}
