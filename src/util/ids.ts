/**
 * The one spelling of a repository id (SHA-256, 64 lower-case hex digits: file names, pack, blob,
 * tree and snapshot ids). At the bottom layer because the backends (file names), the repository
 * (index, snapshots) and the tree codec all check it.
 */
export const ID_HEX = '[0-9a-f]{64}';
export const ID_RE = new RegExp(`^${ID_HEX}$`);
