"""The run-directory contract: runs/<run_id>/{spec.json, status.json, curve.csv, result.json}.

Every file is written to a temporary name in the same directory and renamed into place, so a
kill at any moment leaves either the old file or the new one, never a torn one. A valid
result.json is the truth for `done`: a status that is missing, torn, or was not yet updated when
the job died never sends a finished run back to training.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweep.spec import RunSpec

STATES = ("planned", "queued", "running", "done", "failed", "diverged")
ACTIVE_STATES = ("queued", "running")
FINISHED_STATES = ("done", "failed", "diverged")
FAILED_STATES = ("failed", "diverged")
CURVE_COLUMNS = ("step", "tokens", "flops", "train_loss", "eval_loss", "lr")


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, payload: Any) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def spec_file(self) -> Path:
        return self.path / "spec.json"

    @property
    def status_file(self) -> Path:
        return self.path / "status.json"

    @property
    def curve_file(self) -> Path:
        return self.path / "curve.csv"

    @property
    def result_file(self) -> Path:
        return self.path / "result.json"

    @property
    def checkpoint_file(self) -> Path:
        return self.path / "checkpoint.pt"

    def write_spec(self, spec: RunSpec) -> None:
        atomic_write_json(self.spec_file, spec.to_dict())

    def read_spec(self) -> RunSpec:
        return RunSpec.from_dict(json.loads(self.spec_file.read_text()))

    def checked_spec(self) -> tuple[RunSpec | None, str | None]:
        """(spec, None) when spec.json describes this run, else (None, why it cannot be trained as it)."""
        try:
            spec = self.read_spec()
        except FileNotFoundError:
            return None, "spec.json is missing"
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return None, f"spec.json is unreadable ({type(exc).__name__})"
        if spec.run_id != self.run_id:
            return None, f"spec.json describes run {spec.run_id}, not this one (edited or copied)"
        return spec, None

    def spec_problem(self) -> str | None:
        """Why spec.json cannot be trained as this run, or None."""
        return self.checked_spec()[1]

    def recorded_status(self) -> dict[str, Any]:
        """status.json as written; a missing or unreadable one counts as planned."""
        try:
            status = json.loads(self.status_file.read_text())
        except (OSError, ValueError):
            status = None
        return status if isinstance(status, dict) and status.get("state") in STATES else {"state": "planned"}

    def read_status(self) -> dict[str, Any]:
        """The recorded status, but done whenever result.json is valid: a status that is torn, or
        was not yet updated when the job died, never sends a finished run back to training."""
        status = self.recorded_status()
        if status["state"] != "done" and self.result_file.exists() and self.result_problem() is None:
            status = {**status, "state": "done", "recovered": f"status said {status['state']}; result.json is valid"}
        return status

    @property
    def state(self) -> str:
        return self.read_status()["state"]

    def set_state(self, state: str, unless_changed_since: dict | None = None, **details: Any) -> bool:
        """Record a new state (read, change, write under the run's status lock, so two writers never
        lose each other's change). With `unless_changed_since` (a status read earlier), write only
        if the recorded status is still that one; returns whether it wrote."""
        assert state in STATES, state
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".status.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            earlier = unless_changed_since
            if earlier is not None and self.recorded_status().get("time") != earlier.get("time"):
                return False
            status = self.read_status()
            history = status.get("history", [])
            history.append({"state": state, "time": time.time()})
            status.update(details, state=state, time=time.time(), host=socket.gethostname(), history=history)
            if state not in FINISHED_STATES:
                status.pop("reason", None)
            atomic_write_json(self.status_file, status)
        return True

    def write_curve(self, rows: list[dict[str, float]]) -> None:
        lines = [",".join(CURVE_COLUMNS)]
        lines += [",".join(repr(row[c]) for c in CURVE_COLUMNS) for row in rows]
        atomic_write_text(self.curve_file, "\n".join(lines) + "\n")

    def write_result(self, result: dict[str, Any]) -> None:
        atomic_write_json(self.result_file, result)

    def read_result(self) -> dict[str, Any]:
        """result.json, checked: raises ValueError saying what is wrong with it."""
        try:
            result = json.loads(self.result_file.read_text())
        except ValueError as exc:
            raise ValueError(f"result.json is not valid JSON ({exc})") from None
        problem = check_result(result, self.run_id)
        if problem:
            raise ValueError(problem)
        return result

    def result_problem(self) -> str | None:
        """Why result.json cannot be trusted, or None if it is a valid result of this run."""
        try:
            self.read_result()
        except (OSError, ValueError) as exc:
            return str(exc)
        return None


def check_result(result: Any, run_id: str) -> str | None:
    if not isinstance(result, dict):
        return "result.json is not a JSON object"
    for key in ("N", "D", "C", "loss"):
        value = result.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            return f"result.json has no positive finite {key!r}"
    if result.get("run_id", run_id) != run_id:
        return f"result.json belongs to run {result['run_id']!r}, not {run_id!r}"
    return None
