"""Smoke test of benchmarks/campaign.py (the closed-loop benchmark), without the Bayesian model."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCHMARKS))  # the script imports benchmarks/worlds.py
    spec = importlib.util.spec_from_file_location("benchmark_campaign", BENCHMARKS / "campaign.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_campaign_benchmark_no_bayes(bench, capsys, tmp_path):
    args = ["--no-bayes", "--worlds", "cardinal", "--seeds", "1", "--rounds", "1", "--n0", "20"]
    results = bench.main([*args, "--proposals", str(tmp_path / "p.csv")])
    printed = capsys.readouterr().out
    assert "final-round regret % by world" in printed

    expected = {"recipe", "random", "rf_argmax", "gp_ei"} | (
        {"botorch"} if bench.has_botorch() else set()
    )
    assert set(results["method"]) == expected
    assert {"world", "n0", "seed", "method", "round", "metric", "value"} <= set(results.columns)
    assert set(bench.METRICS) <= set(results["metric"])

    regret = results[results["metric"] == "regret"]
    assert set(regret["round"]) == {0, 1}
    assert len(regret) == 2 * len(expected)
    assert np.isfinite(regret["value"]).all()
    assert (regret["value"] >= -0.5).all()
    unsafe = results.loc[results["metric"] == "unsafe", "value"]
    assert ((unsafe >= 0) & (unsafe <= 1)).all()

    # keeping the recipe: each batch loses exactly the recipe's regret
    rec = results[(results["method"] == "recipe") & (results["round"] == 1)]
    value = rec.set_index("metric")["value"]
    assert value["lost"] == pytest.approx(value["regret"], rel=1e-12)
    assert value["unsafe"] == 0.0
    # every proposed batch, with its true ratio to the recipe (the recipe's own is 1)
    proposed = pd.read_csv(tmp_path / "p.csv")
    assert len(proposed) == 4 * len(expected)
    kept = proposed[proposed["method"] == "recipe"]
    assert np.allclose(kept["ratio"], 1.0) and not kept["unsafe"].any()
    assert (kept["from_recipe"] == 0).all()
