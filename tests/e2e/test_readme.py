"""The README's commands on Epoch AI's data, run as written, print the numbers the README claims."""

from __future__ import annotations

import json
import re
import shlex

from tests.conftest import REPO, sweep_cli

README = (REPO / "README.md").read_text()


def readme_command(prefix: str, epoch_csv) -> list[str]:
    """The README's line starting with `prefix`, split as a shell would, with the reader's path."""
    (line,) = [line for line in README.splitlines() if line.startswith(prefix)]
    return [str(epoch_csv) if word == "$EPOCH_CSV" else word for word in shlex.split(line)][1:]


def printed(table: str, name: str) -> str:
    return re.search(rf"│ {name}\s+│\s+(\S+) \[", table).group(1)


def test_the_readme_epoch_fit_prints_epochs_published_parameters(epoch_csv):
    claimed = re.search(r"reproduces\s+their E ([\d.]+), alpha ([\d.]+), beta ([\d.]+)", README).groups()
    result = sweep_cli(*readme_command('sweep fit "$EPOCH_CSV"', epoch_csv))
    assert result.returncode == 0, result.stderr
    assert "240 runs" in result.stdout
    for name, value in zip(("E", "alpha", "beta"), claimed, strict=True):
        assert printed(result.stdout, name) == f"{float(value):.4g}", name  # the table's 4 digits


def test_the_readme_epoch_backtest_runs(epoch_csv):
    result = sweep_cli(*readme_command('sweep backtest "$EPOCH_CSV"', epoch_csv), "fit.bootstrap=0")
    assert result.returncode == 0, result.stderr
    assert "mean abs error" in result.stdout


def test_the_readmes_next_wave_is_planned_and_launched(tmp_path):
    for prefix in ("sweep run launcher.trainer=noop", "sweep propose sweeps/wave --next-wave"):
        result = sweep_cli(*readme_command(prefix, None), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    assert "expected width after the wave:" in result.stdout and "of 1e+13 FLOPs allowed" in result.stdout
    (record,) = (tmp_path / "sweeps/wave/proposals").glob("next-wave-*.json")
    runs = len(json.loads(record.read_text())["runs"])
    launched = sweep_cli(*readme_command("sweep launch sweeps/wave", None), cwd=tmp_path)
    assert launched.returncode == 0, launched.stderr
    assert f"submitted {runs} runs" in launched.stdout


def readme_api_example() -> str:
    """The README's ```python block that imports Sweep."""
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", README, re.S) if "from sweep import Sweep" in b]
    return block


def test_the_readmes_python_api_example_runs_and_prints_what_it_says(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(readme_api_example(), "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "<Sweep 'api' at sweeps/api: 6 runs (6 done)>" in printed
    assert "Chinchilla(E=1.69" in printed and "sweeps/api/proposals/target-C1e12.yaml" in printed
    assert sorted(p.name for p in (tmp_path / "exports/api").iterdir()) == [
        "curves.parquet", "fits.parquet", "proposals.parquet", "runs.parquet",
    ]  # fmt: skip
    assert "sweeps/api/report/index.html" in printed and (tmp_path / "sweeps/api/report/index.html").is_file()
