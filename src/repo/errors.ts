/** Typed errors that the CLI maps to restic's exit codes. */
export class RepoNotFoundError extends Error {
  override name = 'RepoNotFoundError';
}
export class LockError extends Error {
  override name = 'LockError';
}
export class UserError extends Error {
  override name = 'UserError';
}
export { WrongPasswordError } from './keys.js';
