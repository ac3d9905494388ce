"""Follow a sweep's runs: their states, and waiting until none is queued or running."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from sweep.launch.jobstate import effective_state
from sweep.launch.trunks import trunk
from sweep.rundir import FINISHED_STATES
from sweep.sweepdir import SweepDir


@dataclass(frozen=True)
class RunState:
    run_id: str
    budget: float
    state: str
    reason: str


# The time left is the runs left over the rate runs finished at in this window: rich's default (30 s)
# is shorter than most runs, and would show no estimate between two finishing.
ETA_WINDOW_S = 3600.0


def run_states(sweep: SweepDir) -> list[RunState]:
    budgets = {entry["run_id"]: entry["budget"] for entry in sweep.planned()}
    states = []
    for run_dir in sweep.runs():
        state = effective_state(run_dir)
        reason = run_dir.read_status().get("reason", "") if state in FINISHED_STATES else ""
        if state == "lost":
            reason = ("queued, but nothing will run it (the CLI stopped mid-launch, or the local queue's "
                      "workers were killed); `sweep launch` submits it")  # fmt: skip
        elif state == "queued" and (parent := trunk(run_dir)) and parent.state != "done":
            reason = f"waits for trunk {parent.run_id}"
        states.append(RunState(run_dir.run_id, budgets[run_dir.run_id], state, reason))
    return states


def state_counts(states: list[RunState]) -> dict[str, int]:
    return dict(Counter(s.state for s in states))


def wait(sweep: SweepDir, poll_s: float = 2.0, show_progress: bool = True) -> list[RunState]:
    """Block until every run is finished (or lost); show a progress bar and a line per finished run."""
    states = run_states(sweep)
    reported = {s.run_id for s in states if s.state in FINISHED_STATES}
    with Progress(
        TextColumn("[bold]training"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
        TimeElapsedColumn(), TimeRemainingColumn(), disable=not show_progress, transient=False,
        speed_estimate_period=ETA_WINDOW_S,
    ) as progress:  # fmt: skip
        task = progress.add_task("", total=len(states))
        while True:
            counts = state_counts(states)
            finished = sum(counts.get(s, 0) for s in FINISHED_STATES)
            progress.update(task, completed=finished, description=_describe(counts))
            for s in states:
                if s.state in FINISHED_STATES and s.run_id not in reported:
                    reported.add(s.run_id)
                    if show_progress:
                        progress.console.print(_finished_line(sweep, s))
            if finished + counts.get("lost", 0) + counts.get("planned", 0) == len(states):
                return states
            time.sleep(poll_s)
            states = run_states(sweep)


def _describe(counts: dict[str, int]) -> str:
    return " ".join(f"{state}={n}" for state, n in sorted(counts.items()))


def _finished_line(sweep: SweepDir, state: RunState) -> str:
    if state.state != "done":
        return f"{state.run_id} (C={state.budget:.3g}) {state.state}: {state.reason}"
    try:
        result = sweep.run(state.run_id).read_result()
    except (OSError, ValueError):
        return f"{state.run_id} (C={state.budget:.3g}) done"
    return (
        f"{state.run_id} (C={state.budget:.3g}) done: N={result['N']:.3g}, D={result['D']:.3g}, "
        f"loss {result['loss']:.4f} in {result['wall_time_s']:.0f} s"
    )
