/** Choosing snapshots as restic's commands do: named ids (or prefixes, "latest"), then --host/--path/--tag. */
import type { Repository } from '../repo/repository.js';
import type { SnapshotWithId } from '../repo/snapshot.js';

export interface SnapshotSelection {
  /** these snapshots only (ids, prefixes or "latest"); none: all */
  ids?: string[];
  /** any of these hosts */
  hosts?: string[];
  /** snapshots that contain every one of these paths */
  paths?: string[];
  /** tag lists ("a,b": both tags); a snapshot matches any one list */
  tags?: string[];
}

export async function selectSnapshots(repo: Repository, s: SnapshotSelection = {}): Promise<SnapshotWithId[]> {
  let l = await repo.listSnapshots();
  if (s.ids?.length) {
    const want = new Set<string>();
    for (const i of s.ids) want.add((await repo.findSnapshot(i)).id);
    l = l.filter((x) => want.has(x.id));
  }
  const hosts = s.hosts ?? [];
  const paths = s.paths ?? [];
  const tags = s.tags ?? [];
  if (hosts.length) l = l.filter((x) => hosts.includes(x.hostname ?? ''));
  if (paths.length) l = l.filter((x) => paths.every((p) => x.paths.includes(p)));
  if (tags.length) l = l.filter((x) => tags.some((tl) => tl.split(',').every((t) => x.tags?.includes(t))));
  return l;
}
