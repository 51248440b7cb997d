"""benchmarks/worlds.py: the failure-ranking AUC and the PSIS-LOO check it reports per fit."""

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("benchmark_worlds", BENCHMARKS / "worlds.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("benchmark_worlds", module)
    spec.loader.exec_module(module)
    return module


def test_failure_auc_ranks_failed_batches_by_probability_or_low_weight(bench):
    failed = np.array([False, True, False, False, True])
    mixture = SimpleNamespace(failure_prob_=np.array([0.1, 0.9, 0.2, 0.05, 0.6]))
    assert bench.failure_auc(mixture, failed) == 1.0
    student_t = SimpleNamespace(batch_weight_=np.array([1.0, 0.2, 0.9, 0.3, 0.8]))
    # failed batches weigh 0.2 and 0.8, the others 1.0, 0.9, 0.3: 5 of 6 pairs ranked right
    assert bench.failure_auc(student_t, failed) == pytest.approx(5 / 6)
    assert bench.failure_auc(student_t, np.zeros(5, dtype=bool)) is None
    assert bench.failure_auc(SimpleNamespace(), failed) is None


def test_loo_checks_take_the_worst_structure(bench):
    diagnostics = {"quadratic": {"max_pareto_k": 0.4}, "gp": {"max_pareto_k": 0.9}}
    assert bench.loo_checks(diagnostics) == {"max_pareto_k": 0.9, "pareto_k_high": 1.0}
    assert bench.loo_checks({"quadratic": {"max_pareto_k": 0.5}})["pareto_k_high"] == 0.0
    assert bench.loo_checks({"quadratic": {"max_r_hat": 1.0}}) == {}
