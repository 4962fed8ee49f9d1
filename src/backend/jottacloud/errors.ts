/** Errors of the Jottacloud backend. Messages are single lines meant for the CLI's "Fatal:" output. */

export const INVALID_GRANT_MESSAGE =
  'the Jottacloud login token/refresh token is no longer valid (tokens are single-use): create a new personal login token in the Jottacloud web UI and run `jbackup jotta login` again';

export class JottaError extends Error {
  override name = 'JottaError';
  constructor(message: string, readonly status?: number, readonly code?: string) {
    super(message);
  }
}

/** The token endpoint answered invalid_grant: the login token or the refresh-token family is dead. */
export class InvalidGrantError extends JottaError {
  override name = 'InvalidGrantError';
  constructor(readonly description?: string) {
    super(INVALID_GRANT_MESSAGE, 400, 'invalid_grant');
  }
}

export class QuotaExceededError extends JottaError {
  override name = 'QuotaExceededError';
}

export class AccountLockedError extends JottaError {
  override name = 'AccountLockedError';
}

/** No account file for the name used in the repository spec. */
export class NoAccountError extends JottaError {
  override name = 'NoAccountError';
}

/** An HTTP answer we did not expect (after retries, if it was retryable). */
export class JottaHttpError extends JottaError {
  override name = 'JottaHttpError';
  constructor(message: string, status: number, code?: string, readonly retryAfterMs?: number) {
    super(message, status, code);
  }
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${units[u]}`;
}
