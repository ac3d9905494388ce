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
