import * as path from 'node:path';
import type { Backend } from './backend.js';
import { LocalBackend } from './local.js';
import { JottaBackend, type JottaBackendOptions } from './jottacloud/backend.js';
import { isJottaLocation } from './jottacloud/spec.js';
import { hasLimits, LimitedBackend, makeLimiters, type Limits } from './decorators/limits.js';
import { RetryBackend, type RetryOptions } from './decorators/retry.js';
import { isRestLocation, openRestBackend, parseRestLocation, redactUrlText, type RestHttpOptions } from './rest/http.js';
import { isRcloneLocation, openRcloneBackend, redactRcloneRemote, type RcloneOptions } from './rest/rclone.js';

export interface BackendOptions {
  /** bandwidth (bytes/s) and connection limits, for every kind of backend */
  limits?: Limits;
  /** options for `jotta:` locations (connections, hard delete, logger, retry policy) */
  jotta?: JottaBackendOptions;
  /** options for `rest:` locations (connections, --cacert, credentials when the URL has none) */
  rest?: RestHttpOptions;
  /** options for `rclone:` locations (program, arguments, connections, stderr) */
  rclone?: RcloneOptions;
  /** retry policy of the rest: and rclone: backends (the retry decorator) */
  retry?: RetryOptions;
}

/** a location as it may be shown: a rest: URL's password, an rclone: remote's secret parameters replaced by *** */
export function redactLocation(location: string): string {
  if (isRcloneLocation(location)) return redactRcloneRemote(location);
  if (!isRestLocation(location)) return location;
  try {
    return parseRestLocation(location).redacted;
  } catch {
    return redactUrlText(location);
  }
}

/**
 * Parse a repository location: a path, `local:<path>`, `jotta:<path>` (default Jottacloud
 * account), `jotta@<account>:<path>`, `rest:http(s)://…/` or `rclone:<remote>:<path>`. This is the
 * one place where the backend decorators are stacked on what it opens: limits
 * (src/backend/decorators/limits.ts), and retries (src/backend/decorators/retry.ts) for the REST
 * backends (Jottacloud retries inside its HTTP layer).
 */
export function openBackend(location: string, opts: BackendOptions = {}): Backend {
  const limits = hasLimits(opts.limits) ? makeLimiters(opts.limits!) : null;
  if (isJottaLocation(location)) {
    const jo: JottaBackendOptions = { ...(opts.jotta ?? {}) };
    // the HTTP layer paces each request's body chunk by chunk with the same limiters (a request
    // sent whole after a wait would leave the line saturated for its length); the decorator
    // only gates connections
    if (limits?.up) jo.pace = { ...jo.pace, up: limits.up };
    if (limits?.down) jo.pace = { ...jo.pace, down: limits.down };
    const be = new JottaBackend(location, jo);
    return limits ? new LimitedBackend(be, limits, { pace: false }) : be;
  }
  if (isRestLocation(location) || isRcloneLocation(location)) {
    const be = isRestLocation(location) ? openRestBackend(location, opts.rest) : openRcloneBackend(location, opts.rclone);
    // retries outside the limits: a retry waits without holding a connection slot, and each attempt's
    // bytes are paced
    return new RetryBackend(limits ? new LimitedBackend(be, limits) : be, { prefix: isRestLocation(location) ? 'rest' : 'rclone', ...(opts.retry ?? {}) });
  }
  const be = openLocal(location);
  return limits ? new LimitedBackend(be, limits) : be;
}

function openLocal(location: string): Backend {
  if (location.startsWith('local:')) return new LocalBackend(path.resolve(location.slice(6)));
  const m = /^([a-z][a-z0-9+.-]*):/.exec(location);
  if (m && m[1] !== 'local' && !/^[a-zA-Z]:[\\/]/.test(location)) {
    throw new Error(`unsupported repository location "${location}" (scheme "${m[1]}:" is not supported yet; use a local path, jotta:<path>, jotta@<account>:<path>, rest:http(s)://host:port/path/ or rclone:<remote>:<path>)`);
  }
  return new LocalBackend(path.resolve(location));
}
