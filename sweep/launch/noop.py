"""A trainer that trains nothing: it writes a result from a fixed Chinchilla law at once. For
measuring and testing orchestration (launch, queue, collect) without paying for training."""

from __future__ import annotations

from sweep.fit.forms import Chinchilla
from sweep.plan.flops import spec_counts
from sweep.rundir import RunDir
from sweep.spec import RunSpec

LAW = Chinchilla(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)  # Hoffmann et al.'s published fit


def noop_train(spec: RunSpec, run_dir: RunDir) -> dict:
    n, n_total, fpt = spec_counts(spec)
    loss = float(LAW.loss(n, spec.tokens))
    row = {"step": spec.steps, "tokens": spec.tokens, "flops": spec.tokens * fpt, "train_loss": loss,
           "eval_loss": loss, "lr": 0.0}  # fmt: skip
    run_dir.write_curve([row])
    result = {"run_id": spec.run_id, "loss": loss, "N": n, "N_total": n_total, "D": spec.tokens,
              "C": spec.tokens * fpt, "flops_per_token": fpt, "steps": spec.steps, "wall_time_s": 0.0,
              "tokens_per_s": 0.0, "device": "noop", "threads": 0, "data": "noop", "entropy_rate": None}  # fmt: skip
    run_dir.write_result(result)
    return result
