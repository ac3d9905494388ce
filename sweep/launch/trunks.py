"""Trunks and their decay branches: the run a branch starts from, and the order to submit them in.

A branch (a run whose spec names a `parent`) starts from its trunk's stable checkpoint, so it is
submitted with or after its trunk and starts only once the trunk is done. A trunk may itself
continue another trunk; the order below handles any depth.
"""

from __future__ import annotations

from sweep.rundir import RunDir
from sweep.spec import is_run_id


def trunk(run_dir: RunDir) -> RunDir | None:
    """The run a branch starts from (its spec's `parent`); None for a run without one."""
    spec, problem = run_dir.checked_spec()
    if problem or not is_run_id(spec.parent):
        return None
    return RunDir(run_dir.path.parent / spec.parent)


def trunk_failure(parent: RunDir) -> str:
    """The reason a branch of a failed or diverged trunk fails with."""
    return f"trunk {parent.run_id} failed: {parent.read_status().get('reason') or 'no reason recorded'}"


def in_trunk_order(runs: list[RunDir]) -> list[RunDir]:
    """The runs, each trunk before its branches (a stable sort by how many of these runs it descends from)."""
    ids = {r.run_id for r in runs}
    parents = {r.run_id: trunk(r) for r in runs}

    def depth(run_id: str) -> int:
        parent = parents[run_id]
        return 0 if parent is None or parent.run_id not in ids else 1 + depth(parent.run_id)

    return sorted(runs, key=lambda r: depth(r.run_id))


def submission_groups(runs: list[RunDir]) -> list[tuple[str, list[RunDir]]]:
    """Runs in trunk order, grouped by the trunk each must wait for ("" for those that wait for
    none: no trunk, or a done one). Submitted group by group in this order, each trunk's job
    exists before the group that depends on it is submitted."""
    groups: dict[str, list[RunDir]] = {}
    for run_dir in runs:
        parent = trunk(run_dir)
        groups.setdefault(parent.run_id if parent and parent.state != "done" else "", []).append(run_dir)
    return list(groups.items())
