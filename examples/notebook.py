# %% [markdown]
# # A scaling-law sweep from Python
#
# The loop of the `sweep` CLI, driven from a notebook: plan a small IsoFLOP sweep, train it, fit
# the scaling laws, read Approach 3's parameters with their bootstrap intervals, propose the
# compute-optimal run at 10x the largest budget, and export the tables. Each `# %%` is a cell
# (VS Code, Jupytext); as a script:
#
#     python examples/notebook.py                      # nine real runs: 4 minutes on 2 busy cores
#     python examples/notebook.py --trainer noop --executor debug --out /tmp/nb   # seconds, no training

# %%
import argparse
import tempfile
from pathlib import Path

from sweep import Sweep

parser = argparse.ArgumentParser(description="A scaling-law sweep from Python: plan, train, fit, propose.")
parser.add_argument("--out", type=Path, default=None, help="Sweep directory (default: a new temporary one).")
parser.add_argument("--executor", default="local", help="local, debug (in this process) or slurm.")
parser.add_argument("--trainer", default="real", help="real, or noop: results from a fixed law, at once.")
args, _ = parser.parse_known_args()  # a notebook kernel passes arguments of its own
out = args.out or Path(tempfile.mkdtemp(prefix="sweep-notebook-")) / "smoke"

# %% Plan: the smoke grid (three sizes per budget) at three budgets, so that Approach 3 has 9 runs.
sweep = Sweep.plan(["sweep=smoke", "sweep.budgets=[3e10,1e11,3e11]", f"launcher.trainer={args.trainer}"], out)
print(sweep)
sweep.status()[["run_id", "budget", "N", "D", "d_model", "n_layers"]]

# %% Train: launch returns at once; wait blocks with a progress bar until every run is finished.
sweep.launch(executor=args.executor)
sweep.wait()
sweep.collect()
print(sweep)

# %% The finished runs and their training curves, as DataFrames.
runs = sweep.runs()
curves = sweep.curves()
print(f"{len(runs)} runs, {len(curves)} curve points")
runs[["run_id", "budget", "N", "D", "loss"]]

# %% Fit Approaches 1-3; Approach 3's parameters with their 95% bootstrap intervals.
report = sweep.fit()
if report.parametric is None:
    print("Approach 3 not fitted:", report.errors.get("approach3"))
else:
    law, intervals = report.parametric.law, report.parameter_intervals()
    print("Approach 3: L = E + A/N^alpha + B/D^beta")
    for name in ("E", "A", "B", "alpha", "beta"):
        low, high = intervals[name] or (float("nan"), float("nan"))
        print(f"  {name:5} = {getattr(law, name):.4g}  [{low:.4g}, {high:.4g}]")

# %% Propose the compute-optimal run at 10x the largest budget.
proposal = sweep.propose()
print(f"proposal {proposal.proposal_id}: C = {proposal.compute:.3g}, d_model {proposal.shape['d_model']}, "
      f"{proposal.shape['n_layers']} layers, {proposal.tokens:,} tokens, lr {proposal.lr:.3g}")  # fmt: skip
for prediction in proposal.predictions:
    low, high = prediction.loss_interval or (float("nan"), float("nan"))
    print(f"  {prediction.approach}: predicted loss {prediction.loss:.4f}  [{low:.4f}, {high:.4f}]")
for warning in proposal.warnings:  # six-run grids are too small to trust: the warnings say what is missing
    print("  warning:", warning)
print("train it with: sweep train --config", sweep.proposal_file(proposal))

# %% Export the tables for other tools, and write the HTML report.
for table in sweep.export("parquet", sweep.path / "export"):
    print(f"exported {table.path} ({table.rows} rows)")
print("report:", sweep.report().index)
