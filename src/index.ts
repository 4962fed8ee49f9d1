/**
 * jbackup as a library: open or create a repository (a location string or a Backend, and a
 * password), then run operations on it. Every operation takes typed options and reports through
 * callbacks; none reads argv, the environment or a terminal, and none exits the process. Errors
 * map to restic's exit codes with exitCodeOf. Close what you open with closeRepository.
 *
 *   const repo = await initRepository('/srv/backup', 'secret');
 *   const s = await backup(repo, { targets: ['/home/me/docs'] });
 *   await restore(repo, { snapshot: s.snapshot_id, target: '/tmp/docs-again' });
 *   await closeRepository(repo);
 */
export { openRepository, initRepository, closeRepository, type OpenOptions, type InitOptions } from './ops/repository.js';
export { backup, type BackupOptions, type BackupProgress, type BackupSummary } from './ops/backup.js';
export { restore, type RestoreOptions, type RestoreProgress, type RestoreResult } from './ops/restore.js';
export { forget, RemoveAllRefusedError, type ForgetOptions, type ForgetResult, type ForgetGroup } from './ops/forget.js';
export { prune, PruneError, type PruneOptions, type PruneStats } from './ops/prune.js';
export { check, type CheckOptions, type CheckResult, type CheckProblem } from './ops/check.js';
export { copy, type CopyOptions, type CopyResult } from './ops/copy.js';
export { dump, find, diff, stats, STATS_MODES, type DumpOptions, type FindOptions, type FindMatch, type DiffOptions, type DiffStatistics, type StatsOptions, type StatsMode, type RepoStats } from './ops/inspect.js';
export { repair, type RepairOptions, type RepairResult } from './ops/repair.js';
export { tag, type TagOptions } from './ops/tag.js';
export { selectSnapshots, type SnapshotSelection } from './ops/select.js';
export { serve, parseListen, type ServeOptions, type ServeHandle } from './ops/serve.js';
export { mountWebdav, davUrl, type MountOptions, type Mounted } from './ops/mount.js';
export { SnapshotFs, type Entry as ServedEntry, type EntryKind as ServedEntryKind, type VfsOptions } from './serve/vfs.js';
export { escapeName, unescapeName } from './serve/names.js';
export { lockRepository, lockAndLoadIndex, unlockRepository, type LockOptions, type LockRegistry } from './ops/lock.js';
export { EXIT, exitCodeOf, ExitCodeError, InterruptedError } from './ops/exit.js';
export { resolvePassword, PasswordSourceError, type PasswordSource, type ResolveOptions } from './util/password.js';
export { forgetGroups, parseDuration, parseGroupBy, type ForgetPolicy, type GroupBy, type SnapshotFilter } from './maintenance/forget.js';

export { Repository, type RepoOptions } from './repo/repository.js';
export type { SnapshotWithId } from './repo/snapshot.js';
export { LockError, RepoNotFoundError, UserError, WrongPasswordError } from './repo/errors.js';

// backends and their options
export type { Backend, BackendProperties, FileInfo, FileType, Handle, SaveOptions } from './backend/backend.js';
export { NotFoundError, AlreadyExistsError, DeleteRefusedError } from './backend/backend.js';
export { openBackend, redactLocation, type BackendOptions } from './backend/location.js';
export { RetryBackend, RetriesExhaustedError, TransientError, type RetryOptions } from './backend/decorators/retry.js';
export { RestBackend, type RestBackendOptions } from './backend/rest/protocol.js';
export { openRestBackend, type RestHttpOptions } from './backend/rest/http.js';
export { openRcloneBackend, RcloneError, type RcloneOptions } from './backend/rest/rclone.js';
export { LocalBackend } from './backend/local.js';
export { MemoryBackend } from './backend/memory.js';
export { JottaBackend, type JottaBackendOptions } from './backend/jottacloud/backend.js';
export { VERSION } from './version.js';
