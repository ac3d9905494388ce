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
