"""benchmarks/recommend_regret.py: its regret plot (moved there from the library)."""

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location(
        "benchmark_recommend_regret", BENCHMARKS / "recommend_regret.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plot_regret_study_draws_one_box_per_recommender_and_n(bench):
    results = pd.DataFrame(
        {"recommender": ["a", "b"] * 4, "n": [20, 20, 40, 40] * 2, "regret_pct": np.arange(8.0)}
    )
    ax = bench.plot_regret_study(results)
    assert isinstance(ax, Axes)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["n = 20", "n = 40"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]
    with pytest.raises(ValueError, match="regret_pct"):
        bench.plot_regret_study(results.drop(columns="regret_pct"))
