"""The run-directory contract: runs/<run_id>/{spec.json, status.json, curve.csv, result.json}.

Every file is written to a temporary name in the same directory and renamed into place, so a
kill at any moment leaves either the old file or the new one, never a torn one.
"""

from __future__ import annotations

import json
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
CURVE_COLUMNS = ("step", "tokens", "flops", "train_loss", "eval_loss", "lr")


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
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

    def read_status(self) -> dict[str, Any]:
        """The last state written; a missing or unreadable status counts as planned."""
        try:
            status = json.loads(self.status_file.read_text())
        except (OSError, ValueError):
            return {"state": "planned"}
        return status if isinstance(status, dict) and status.get("state") in STATES else {"state": "planned"}

    @property
    def state(self) -> str:
        return self.read_status()["state"]

    def set_state(self, state: str, **details: Any) -> None:
        assert state in STATES, state
        status = self.read_status()
        history = status.get("history", [])
        history.append({"state": state, "time": time.time()})
        status.update(details, state=state, time=time.time(), host=socket.gethostname(), history=history)
        if state not in FINISHED_STATES:
            status.pop("reason", None)
        atomic_write_json(self.status_file, status)

    def write_curve(self, rows: list[dict[str, float]]) -> None:
        lines = [",".join(CURVE_COLUMNS)]
        lines += [",".join(repr(row[c]) for c in CURVE_COLUMNS) for row in rows]
        atomic_write_text(self.curve_file, "\n".join(lines) + "\n")

    def write_result(self, result: dict[str, Any]) -> None:
        atomic_write_json(self.result_file, result)

    def read_result(self) -> dict[str, Any]:
        return json.loads(self.result_file.read_text())
