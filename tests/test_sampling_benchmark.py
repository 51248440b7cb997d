"""benchmarks/sampling.py: the histories it fits and its per-size summary."""

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("benchmark_sampling", BENCHMARKS / "sampling.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_summary_means_per_size_and_structure(bench):
    rows = pd.DataFrame(
        {
            "world": ["a", "a", "b", "b"],
            "n": [20, 20, 20, 20],
            "seed": [0, 0, 0, 0],
            "structure": ["quadratic", "gp", "quadratic", "gp"],
            "fit_s": [10.0, 10.0, 30.0, 30.0],
            "runs": [1, 2, 1, 1],
            "steps_per_draw": [100.0, 300.0, 50.0, 100.0],
            "kilo_steps": [400.0, 1800.0, 200.0, 400.0],
            "max_r_hat": [1.005, 1.02, 1.003, 1.004],
            "min_ess": [800.0, 300.0, 1000.0, 900.0],
            "divergences": [0, 3, 0, 0],
            "passed": [True, False, True, True],
        }
    )
    out = bench.summary(rows)
    gp = out.loc[(20, "gp")]
    assert gp["fits"] == 2 and gp["steps_per_draw"] == 200.0 and gp["runs"] == 1.5
    assert gp["kilo_steps"] == 1100.0
    assert gp["worst_r_hat"] == 1.02 and gp["passed"] == 0.5 and gp["divergences"] == 1.5
    assert out.loc[(20, "quadratic"), "passed"] == 1.0


def test_histories_cover_every_world_size_and_seed(bench):
    found = bench.histories([12], [0, 1], [30], ["cardinal", "failures"])
    assert [(w, n, s) for w, n, s, _, _ in found] == [
        ("cardinal", 12, 0),
        ("failures", 12, 0),
        ("cardinal", 12, 1),
        ("failures", 12, 1),
        ("simulator", 30, 0),
        ("simulator", 30, 1),
    ]
    assert all(len(table) == n for _, n, _, table, _ in found)
    assert np.isfinite(found[0][3]["yield"]).all()
