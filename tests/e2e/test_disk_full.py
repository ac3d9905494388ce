"""A full disk (a real 2 MB tmpfs): every command prints one error line or works, nothing written
before is lost or changed, and once space is freed the same commands work."""

from __future__ import annotations

import os
import subprocess

import pytest

from sweep.store import Store
from tests.conftest import sweep_cli
from tests.e2e.test_bad_input import assert_user_error, snapshot

SMALL = ["sweep=smoke", "launcher.trainer=noop", "fit.bootstrap=10"]


@pytest.fixture
def tiny_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mount = tmp_path / "disk"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    assert mounted.returncode == 0, mounted.stderr
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(disk):
    with open(disk / "filler", "wb", buffering=0) as handle:
        for size in (1 << 16, 1 << 10, 1):
            try:
                while True:
                    handle.write(b"\0" * size)
            except OSError:
                pass


def store_rows(sweep_dir):
    with Store(sweep_dir / "results.db", create=False) as store:
        return store.runs().drop(columns="updated").to_json()


def assert_one_line_or_success(result):
    assert "Traceback" not in result.stderr, result.stderr
    if result.returncode != 0:
        assert_user_error(result)


def test_a_full_disk_is_one_line_and_loses_nothing(tiny_disk, tmp_path):
    done, planned = tiny_disk / "done", tiny_disk / "planned"
    for out in (done, planned):
        assert sweep_cli("plan", *SMALL, "--out", out).returncode == 0
    assert sweep_cli("launch", done, "--executor", "debug").returncode == 0
    assert sweep_cli("collect", done).returncode == 0
    csv = tmp_path / "runs.csv"
    csv.write_text("N,C,loss\n" + "".join(f"{n},{c},{3 + n / 1e7}\n" for c in (1e15, 1e16) for n in (1e6, 2e6, 4e6)))
    before_rows = store_rows(done)

    fill(tiny_disk)
    before = snapshot(tiny_disk)
    commands = {
        "plan new": ["plan", *SMALL, "--out", tiny_disk / "new"],
        "plan more": ["plan", *SMALL, "sweep.seeds=[0,1]", "--out", planned],
        "launch": ["launch", planned, "--executor", "debug"],
        "status": ["status", done],
        "collect": ["collect", done],
        "fit": ["fit", done],
        "import": ["import", csv, "--into", done],
        "rebuild": ["collect", "--rebuild", done],
    }
    failed = set()
    for name, args in commands.items():
        result = sweep_cli(*args)
        assert_one_line_or_success(result)
        if result.returncode:
            failed.add(name)
    assert {"plan new", "launch", "fit", "import", "rebuild"} <= failed  # each had to write, and could not
    assert (done / "results.db").is_file() and not list(done.glob("*.bak"))  # a failed rebuild keeps the store
    assert not (tiny_disk / "new").exists() and not [p for p in tiny_disk.iterdir() if p.name.startswith(".")]
    after = snapshot(tiny_disk)
    unchanged = {k for k in before if not k.startswith(("done/results.db", "filler"))}
    assert {k: after.get(k) for k in unchanged} == {k: before[k] for k in unchanged}

    (tiny_disk / "filler").unlink()
    assert store_rows(done) == before_rows  # the store kept every row as it was
    for name in ("plan new", "launch", "collect", "fit", "import"):
        result = sweep_cli(*commands[name])
        assert result.returncode == 0, (name, result.stderr)
