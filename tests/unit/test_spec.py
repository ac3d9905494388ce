from dataclasses import replace

from sweep.config import compose
from sweep.plan.grids import make_plan
from sweep.spec import RunSpec


def a_spec() -> RunSpec:
    return make_plan(compose(["sweep=smoke"])).specs[0]


def test_run_id_is_stable_and_ignores_the_budget_tag():
    spec = a_spec()
    assert spec.run_id == RunSpec.from_dict(spec.to_dict()).run_id
    assert replace(spec, budget=spec.budget * 7).run_id == spec.run_id
    assert len(spec.run_id) == 12


def test_anything_that_changes_the_result_changes_the_id():
    spec = a_spec()
    changed = [replace(spec, seed=1), replace(spec, lr=spec.lr * 2), replace(spec, tokens=spec.tokens + 1),
               replace(spec, data=replace(spec.data, source="synthetic")), replace(spec, precision="bf16"),
               replace(spec, precision="fp32")]  # fmt: skip
    ids = {spec.run_id, *(s.run_id for s in changed)}
    assert len(ids) == 7


def test_a_spec_written_before_precision_existed_keeps_its_id():
    spec = a_spec()
    old = {k: v for k, v in spec.to_dict().items() if k != "precision"}
    assert RunSpec.from_dict(old).run_id == spec.run_id == replace(spec, precision="auto").run_id
