"""Every example script and the walkthrough notebook run (reduced settings)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "examples").glob("*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_example_script_runs(script, tmp_path):
    env = {
        **os.environ,
        "MPLBACKEND": "Agg",
        "BAYESBIO_OUTPUT": str(tmp_path),
        "BAYESBIO_QUICK": "1",
    }
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
def test_fed_batch_example_runs_the_six_factor_process_end_to_end(tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg", "BAYESBIO_OUTPUT": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "05_microbial_fed_batch.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,  # the example must stay well under 5 minutes on 2 cores
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "Microbial fed-batch" in out and "6 factors" in out
    for factor in ("agitation", "feed_rate", "iptg"):
        assert factor in out
    assert "regret %" in out and "% of the grid inside" in out
    figures = tmp_path / "05_microbial_fed_batch"
    assert (figures / "recommendation.png").stat().st_size > 0
    assert (figures / "design_space.png").stat().st_size > 0


@pytest.mark.slow
def test_walkthrough_notebook_executes(tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("BAYESBIO_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(ROOT / "examples" / "walkthrough.ipynb", as_version=4)
    NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors
    assert any("regret %" in str(o) for c in nb.cells for o in c.get("outputs", []))


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    import re

    monkeypatch.chdir(tmp_path)
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python example"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {"__name__": "__readme__"})
