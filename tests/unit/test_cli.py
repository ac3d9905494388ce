from contextlib import nullcontext

from typer.testing import CliRunner

from sweep import cli, render
from tests.unit.fit.test_report import TRUTH, chinchilla_runs


def test_a_fit_prints_no_progress_where_stderr_is_not_a_terminal(tmp_path, monkeypatch):
    csv = tmp_path / "runs.csv"
    chinchilla_runs(TRUTH).to_csv(csv, index=False)
    args = ["fit", str(csv), "fit.bootstrap=20"]
    monkeypatch.setattr(render, "PROGRESS_DELAY_S", 0.0)  # any fit would show a bar on a terminal
    shown = CliRunner().invoke(cli.app, args)
    monkeypatch.setattr(cli, "fit_progress", lambda show: nullcontext(None))
    without_progress = CliRunner().invoke(cli.app, args)
    assert shown.exit_code == 0 and "Approach 3" in shown.stdout
    assert (shown.stdout, shown.stderr) == (without_progress.stdout, "")


def law_sweep(tmp_path):
    """A sweep whose runs' curves lie on a known curve law: three of one shape, one of another."""
    from dataclasses import replace

    from sweep import api
    from sweep.config import compose
    from sweep.plan.grids import single_run_spec
    from sweep.rundir import RunDir
    from sweep.sweepdir import SweepDir
    from tests.unit.fit.test_curvelaw import curve_of

    base = single_run_spec(compose(["run.d_model=32", "run.n_layers=2", "run.tokens=100000", "run.batch_size=8"]))
    specs = [replace(base, tokens=t) for t in (300_000, 800_000, 2_000_000)] + [replace(base, d_model=48)]
    sweep = SweepDir.create(tmp_path / "sweep", compose([]), specs)
    for spec in specs:
        curve, per_step = curve_of(spec), spec.batch_size * spec.seq_len
        run = RunDir(sweep.runs_dir / spec.run_id)
        rows = zip(curve.steps.tolist(), curve.losses.tolist(), strict=True)
        run.write_curve([{"step": s, "tokens": s * per_step, "flops": 6e5 * s * per_step, "train_loss": loss,
                          "eval_loss": loss, "lr": 1e-3} for s, loss in rows])  # fmt: skip
        run.write_result({"run_id": spec.run_id, "N": 1e5, "N_total": 2e5, "D": spec.tokens, "C": 6e5 * spec.tokens,
                          "loss": curve.final_loss})  # fmt: skip
        run.set_state("done")
    api.collect(sweep.path)
    return sweep.path


def test_backtest_curves_prints_each_run_and_json_is_one_document(tmp_path):
    import json

    sweep = law_sweep(tmp_path)
    shown = CliRunner().invoke(cli.app, ["backtest", str(sweep), "--curves"])
    assert shown.exit_code == 0, shown.output
    assert "curve law: mean abs error 0.00%" in shown.stdout
    assert "not backtested: 48x2" in shown.stdout and "1 run, none other to fit its law from" in shown.stdout
    as_json = CliRunner().invoke(cli.app, ["backtest", str(sweep), "--curves", "--json"])
    payload = json.loads(as_json.stdout)
    assert len(payload["runs"]) == 3 and payload["mean_ape_percent"] < 0.01 < payload["baseline_mean_ape_percent"]
    assert payload["unchecked"] == ["48x2 (lr 0.008): 1 run, none other to fit its law from"]


def test_backtest_curves_of_a_csv_or_no_sweep_is_one_error_line(tmp_path):
    from tests.conftest import sweep_cli

    csv = tmp_path / "runs.csv"
    chinchilla_runs(TRUTH).to_csv(csv, index=False)
    for source, says in ((csv, "--curves needs a sweep directory"), (tmp_path / "nowhere", "does not exist")):
        result = sweep_cli("backtest", source, "--curves")
        assert result.returncode == 2 and result.stdout == "", result.stderr
        assert result.stderr.startswith("error: ") and says in result.stderr and result.stderr.count("\n") == 1
