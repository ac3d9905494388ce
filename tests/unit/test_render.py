import io
import time

from rich.console import Console

from sweep import render
from sweep.render import FitProgress


def terminal() -> Console:
    return Console(file=io.StringIO(), force_terminal=True, width=100)


def wait_until_shown(progress: FitProgress) -> None:
    deadline = time.monotonic() + 10
    while not progress.bar.live.is_started:
        assert time.monotonic() < deadline, "the bar never appeared"
        time.sleep(0.01)


def test_a_slow_fit_shows_its_stage_and_count_and_a_fast_one_nothing(monkeypatch):
    monkeypatch.setattr(render, "PROGRESS_DELAY_S", 0.0)
    slow = FitProgress(terminal())
    slow("Approach 3", 0, 1)
    wait_until_shown(slow)
    slow("Approach 3 bootstrap", 80, 200)
    slow.stop()
    shown = slow.terminal.file.getvalue()
    assert "Approach 3 bootstrap" in shown and "80/200" in shown

    monkeypatch.setattr(render, "PROGRESS_DELAY_S", 60.0)
    fast = FitProgress(terminal())
    fast("Approach 3", 0, 1)
    fast("Approach 3 bootstrap", 200, 200)
    fast.stop()
    assert fast.terminal.file.getvalue() == ""


def test_after_stop_the_next_report_starts_a_new_bar(monkeypatch):
    monkeypatch.setattr(render, "PROGRESS_DELAY_S", 0.0)
    progress = FitProgress(terminal())
    progress("Approach 3", 0, 1)
    wait_until_shown(progress)
    progress.stop()
    progress("Approach 2", 0, 1)
    wait_until_shown(progress)
    progress.stop()
    assert "Approach 2" in progress.terminal.file.getvalue()


def test_a_report_names_its_page_its_figures_and_why_each_other_was_skipped(monkeypatch, tmp_path):
    from sweep.report.build import ReportResult

    shown = Console(file=io.StringIO(), width=200)  # plain text: no colours between the words
    monkeypatch.setattr(render, "console", shown)
    figures = [tmp_path / f"valleys.{suffix}" for suffix in ("png", "svg")]
    why = "no LR sweep [sweep=lrbatch plans one]"  # brackets are text, not markup
    render.print_report(ReportResult(tmp_path / "index.html", figures, {"lr": why}, tmp_path / "provenance.json"))
    text = shown.file.getvalue()
    assert f"report: {tmp_path / 'index.html'}" in text
    assert "figures: 1 written beside it as PNG and SVG (valleys)" in text
    assert f"figure lr skipped: {why}" in text


def test_training_shows_steps_the_last_eval_loss_tokens_per_second_and_time_left():
    progress = render.TrainProgress(terminal())
    progress(10, 100, 3.21, 12345.0)
    progress(20, 100, None, 23456.0)  # between evaluations the last loss stays
    task = progress.bar.tasks[0]
    assert (task.completed, task.total, task.fields) == (20, 100, {"loss": "3.2100", "speed": "23,456"})
    progress.bar.refresh()
    shown = progress.bar.console.file.getvalue()
    progress.stop()
    assert "20/100" in shown and "loss 3.2100" in shown and "23,456 tokens/s" in shown
