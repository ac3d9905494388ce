import json
from contextlib import nullcontext
from pathlib import Path

from typer.testing import CliRunner

from sweep import cli, render
from tests.conftest import sweep_cli
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


TINY_RUN = ["data=synthetic", "data.vocab_size=16", "data.synthetic_tokens=400000", "train.eval_points=4",
            "run.d_model=32", "run.n_layers=1", "run.tokens=200000", "run.batch_size=16",
            "train.threads=1"]  # fmt: skip


def test_train_feeds_its_progress_bar_every_step_and_shows_none_off_a_terminal(tmp_path, monkeypatch):
    args = ["train", *TINY_RUN, "--out", str(tmp_path / "plain")]
    plain = CliRunner().invoke(cli.app, args)
    assert plain.exit_code == 0 and plain.stderr == "" and plain.stdout.startswith("run ")
    assert len(plain.stdout.strip().splitlines()) == 1

    heard = []
    monkeypatch.setattr(cli, "train_progress", lambda show: nullcontext(lambda *report: heard.append(report)))
    shown = CliRunner().invoke(cli.app, ["train", *TINY_RUN, "--out", str(tmp_path / "shown")])
    assert shown.exit_code == 0, shown.output
    steps = [step for step, *_ in heard]
    assert steps == list(range(1, heard[0][1] + 1)) and sum(loss is not None for _, _, loss, _ in heard) == 4


def test_train_says_its_mfu_where_the_devices_peak_is_known(tmp_path):
    unknown = CliRunner().invoke(cli.app, ["train", *TINY_RUN, "--out", str(tmp_path / "a")])
    assert unknown.exit_code == 0 and "MFU" not in unknown.stdout  # a CPU has no peak in the table
    known = CliRunner().invoke(cli.app, ["train", *TINY_RUN, "train.peak_flops=1e12", "--out", str(tmp_path / "b")])
    assert known.exit_code == 0, known.output
    mfu = json.loads(next((tmp_path / "b" / "runs").glob("*/result.json")).read_text())["mfu"]
    assert f"tokens/s (MFU {mfu:.1%}) on cpu" in known.stdout


def test_export_prints_what_it_wrote_and_json_lists_the_files(tmp_path):
    from sweep import api
    from tests.unit.test_api import OVERRIDES

    sweep, _ = api.plan(OVERRIDES, tmp_path / "s")
    human = sweep_cli("export", sweep.path, "--format", "parquet", "--out", tmp_path / "out")
    assert human.returncode == 0, human.stderr
    files = ", ".join(f"{name}.parquet (0 rows)" for name in ("runs", "curves", "fits", "proposals"))
    assert " ".join(human.stdout.split()) == f"exported {files} to {tmp_path / 'out'} as parquet"
    machine = sweep_cli("export", sweep.path, "--format", "json", "--out", tmp_path / "out", "--json")
    payload = json.loads(machine.stdout)
    assert payload["format"] == "json" and [t["name"] for t in payload["tables"]] == ["runs", "curves", "fits",
                                                                                      "proposals"]  # fmt: skip
    assert all(Path(t["path"]).is_file() and t["rows"] == 0 for t in payload["tables"])


def test_export_refuses_a_bad_format_and_an_out_that_is_a_file_in_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    for args in (["--format", "xml", "--out", tmp_path / "out"], ["--out", tmp_path / "file"]):
        result = sweep_cli("export", tmp_path, *args)
        assert result.returncode == 2 and result.stdout == ""
        assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error: Invalid value for")
    assert not (tmp_path / "out").exists()
