"""Trunks before their branches: the order runs are submitted in, and the groups that wait together.

Also the sweep of a trunk and its decay branches that the launch tests use, built by hand the way
the planner writes one (branches listed before their trunk, so no test passes by plan order)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from sweep.config import compose
from sweep.launch.trunks import in_trunk_order, submission_groups, trunk
from sweep.plan.grids import single_run_spec
from sweep.spec import RunSpec
from sweep.sweepdir import SweepDir

TINY = ["data=synthetic", "data.vocab_size=16", "data.synthetic_tokens=400000", "train.eval_points=4",
        "run.d_model=32", "run.n_layers=1", "run.tokens=200000", "run.batch_size=16",
        "train.schedule=wsd", "train.decay_frac=0.25"]  # fmt: skip


@dataclass(frozen=True)
class WsdFamily:
    trunk: RunSpec
    branches: list[RunSpec]  # decay branches from the trunk, the longest first
    alone: list[RunSpec]  # the same WSD runs trained from scratch, one per branch


def wsd_family(*overrides: str) -> WsdFamily:
    """A trunk that keeps stable checkpoints where two WSD runs (one of half the tokens) start
    their decay, and those two runs as decay branches from it."""
    long = replace(single_run_spec(compose([*TINY, *overrides])), warmup_steps=5)  # a warmup the branches share
    alone = [long, replace(long, tokens=long.tokens // 2)]
    decay_starts = [spec.steps - round(spec.decay_frac * spec.steps) for spec in alone]
    trunk = replace(long, decay_frac=0.0, tokens=decay_starts[0] * long.batch_size * long.seq_len, role="trunk",
                    branch_steps=tuple(decay_starts[1:]))  # fmt: skip
    branches = [
        replace(spec, parent=trunk.run_id, branch_step=step) for spec, step in zip(alone, decay_starts, strict=True)
    ]
    return WsdFamily(trunk, branches, alone)


def trunk_sweep(out: Path, *overrides: str, alone: bool = False) -> tuple[SweepDir, WsdFamily]:
    """A sweep of one trunk and its two branches (and the runs trained alone, with `alone`), the
    branches planned first."""
    family = wsd_family(*overrides)
    specs = [*family.branches, family.trunk, *(family.alone if alone else [])]
    return SweepDir.create(out, compose([*TINY, *overrides]), specs), family


def test_trunks_come_before_their_branches_at_any_depth(tmp_path):
    family = wsd_family()
    continuation = replace(family.trunk, tokens=2 * family.trunk.tokens, parent=family.trunk.run_id,
                           branch_step=family.trunk.steps)  # fmt: skip  # a trunk that continues the first
    late_branch = replace(family.branches[0], parent=continuation.run_id, branch_step=continuation.steps)
    ordinary = family.alone[0]
    sweep = SweepDir.create(tmp_path / "s", compose(TINY), [late_branch, *family.branches, continuation, ordinary])
    sweep.add_runs([family.trunk])
    ordered = [r.run_id for r in in_trunk_order(sweep.runs())]
    depth = {family.trunk.run_id: 0, ordinary.run_id: 0, continuation.run_id: 1, late_branch.run_id: 2,
             **{b.run_id: 1 for b in family.branches}}  # fmt: skip
    assert [depth[run_id] for run_id in ordered] == sorted(depth.values())
    assert ordered[:2] == [ordinary.run_id, family.trunk.run_id]  # stable: plan order within a depth


def test_branches_are_grouped_by_the_trunk_they_wait_for_unless_it_is_done(tmp_path):
    sweep, family = trunk_sweep(tmp_path / "s", alone=True)
    groups = submission_groups(in_trunk_order(sweep.runs()))
    assert [(parent, {r.run_id for r in runs}) for parent, runs in groups] == [
        ("", {family.trunk.run_id, *(s.run_id for s in family.alone)}),
        (family.trunk.run_id, {b.run_id for b in family.branches}),
    ]
    trunk_dir = trunk(sweep.run(family.branches[0].run_id))
    assert trunk_dir == sweep.run(family.trunk.run_id)
    trunk_dir.set_state("done")
    assert [parent for parent, _ in submission_groups(sweep.runs())] == [""]  # a done trunk: nothing to wait for
