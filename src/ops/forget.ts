/**
 * The one snapshot removal, used by `jbackup forget` (and its --prune) and by profile runs'
 * retention: named snapshots, or a policy applied per group, with restic's refusal to remove every
 * snapshot of a group. The caller holds an exclusive lock (or none for a dry run: --no-lock).
 */
import { forgetGroups, policyIsEmpty, type ForgetPolicy, type GroupBy, type PolicyResult, type SnapshotFilter, type SnapshotGroup } from '../maintenance/forget.js';
import { UserError } from '../repo/errors.js';
import type { Repository } from '../repo/repository.js';

/** a policy would remove every snapshot of a group (and unsafeAllowRemoveAll is not set) */
export class RemoveAllRefusedError extends UserError {
  override name = 'RemoveAllRefusedError';
  constructor(readonly group: ForgetGroup) {
    super(`refusing to delete all ${group.remove.length} snapshots of group ${JSON.stringify(group.key)}; use --unsafe-allow-remove-all if that is what you want`);
  }
}

export type ForgetGroup = SnapshotGroup & PolicyResult;

export interface ForgetOptions {
  /** remove exactly these snapshots (ids, prefixes or "latest"); the policy is then not used */
  ids?: string[];
  policy?: ForgetPolicy;
  filter?: SnapshotFilter;
  groupBy?: GroupBy;
  /** allow a policy to remove every snapshot of a group */
  unsafeAllowRemoveAll?: boolean;
  /** decide and report, remove nothing */
  dryRun?: boolean;
  progress?: {
    /** each group's decision, before the next group is looked at */
    group?(g: ForgetGroup): void;
  };
}

export interface ForgetResult {
  /** no ids and an empty policy: nothing was decided */
  noPolicy: boolean;
  groups: ForgetGroup[];
  /** the snapshots removed (or, with dryRun, that would have been), each once */
  removed: string[];
}

export async function forget(repo: Repository, o: ForgetOptions): Promise<ForgetResult> {
  const groups: ForgetGroup[] = [];
  let remove: string[] = [];
  let noPolicy = false;
  if (o.ids?.length) {
    for (const i of o.ids) remove.push((await repo.findSnapshot(i)).id);
  } else if (!o.policy || policyIsEmpty(o.policy)) {
    noPolicy = true;
  } else {
    const all = await repo.listSnapshots();
    for (const gr of forgetGroups(all, o.policy, { filter: o.filter, groupBy: o.groupBy })) {
      if (gr.keep.length === 0 && gr.remove.length > 0 && !o.unsafeAllowRemoveAll) {
        throw new RemoveAllRefusedError(gr);
      }
      groups.push(gr);
      remove.push(...gr.remove.map((s) => s.id));
      o.progress?.group?.(gr);
    }
  }
  remove = [...new Set(remove)];
  if (!o.dryRun) for (const id of remove) await repo.backend.remove({ type: 'snapshots', name: id });
  return { noPolicy, groups, removed: remove };
}
