"""Read back what an offline W&B run wrote: its run-*.wandb file, parsed with W&B's own protobuf records.

The file is a LevelDB-style log (wandb-core's transaction log, the one `wandb sync` uploads): a 7-byte
header (":W&B", magic, version), then 32 KiB blocks of chunks, each a 7-byte header (CRC-32, length,
type: full, first, middle, last) and its bytes; a block's tail shorter than a header is zero padding.
wandb 0.31 ships no Python reader of it, so the tests read it here.
"""

from __future__ import annotations

import json
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

from wandb.proto import wandb_internal_pb2

BLOCK = 32 * 1024
HEADER = struct.Struct("<IHB")  # CRC-32, length, chunk type
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


@dataclass
class OfflineRun:
    directory: Path  # wandb/offline-run-<time>-<id>
    run_id: str
    name: str
    group: str
    job_type: str
    tags: list[str]
    config: dict
    history: list[dict] = field(default_factory=list)  # each logged step's values, W&B's _-keys left out
    summary: dict = field(default_factory=dict)  # the last value of each key

    def file(self, path: str) -> Path:
        """A file the run saved, e.g. a table's or an image's (paths as logged: media/...)."""
        return self.directory / "files" / path


def records(path: Path) -> list[wandb_internal_pb2.Record]:
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B transaction log"
    out, chunks, pos = [], [], 7
    while pos + HEADER.size <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER.size:
            pos += left
            continue
        _, length, kind = HEADER.unpack_from(data, pos)
        if pos + HEADER.size + length > len(data):  # being written
            break
        if kind == 0:  # zero padding to the block's end
            pos += left
            continue
        chunks.append(data[pos + HEADER.size : pos + HEADER.size + length])
        pos += HEADER.size + length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(b"".join(chunks))
            out.append(record)
            chunks = []
    return out


def read_runs(wandb_dir: Path) -> list[OfflineRun]:
    """Every offline run under `wandb_dir` (the folder holding wandb/), oldest first."""
    return [read_run(path) for path in sorted(Path(wandb_dir).glob("wandb/offline-run-*/run-*.wandb"))]


def finished_records(path: Path, timeout_s: float = 30.0) -> list[wandb_internal_pb2.Record]:
    """The records of a finished run: wandb-core writes the log in the background, and run.finish()
    may return before it has, so wait for the exit record."""
    deadline = time.monotonic() + timeout_s
    while True:
        logged = records(path)
        if logged and logged[-1].WhichOneof("record_type") == "exit":
            return logged
        assert time.monotonic() < deadline, f"{path} has no exit record after {timeout_s} s"
        time.sleep(0.05)


def read_run(path: Path) -> OfflineRun:
    run = None
    for record in finished_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run" and run is None:
            r = record.run
            config = {item.key: json.loads(item.value_json) for item in r.config.update if item.key != "_wandb"}
            run = OfflineRun(path.parent, r.run_id, r.display_name, r.run_group, r.job_type, list(r.tags), config)
        elif kind == "history":
            run.history.append(_items(record.history.item))
        elif kind == "summary":
            run.summary.update(_items(record.summary.update))
    return run


def _items(items) -> dict:
    """Logged key -> value, W&B's own keys (_step, _runtime, ...) left out; a nested key is joined by dots."""
    values = {}
    for item in items:
        key = item.key or ".".join(item.nested_key)
        if not key.startswith("_"):
            values[key] = json.loads(item.value_json)
    return values


def go_offline(monkeypatch, directory: Path) -> None:
    """W&B offline and silent, writing only under `directory` (no network, nothing in ~)."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for name, sub in (("WANDB_DIR", ""), ("WANDB_CONFIG_DIR", "config"), ("WANDB_CACHE_DIR", "cache"),
                      ("WANDB_DATA_DIR", "data")):  # fmt: skip
        monkeypatch.setenv(name, str(directory / sub))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
