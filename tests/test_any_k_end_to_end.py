"""End to end on processes with k = 1, 2, 3, 5 and 6 factors: fit, recommend, design space,
report. And the same data in minutes (declared) and in seconds gives the same answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayesbio.clean import clean
from bayesbio.interpret import argmax_setpoint
from bayesbio.models import ForestYield
from bayesbio.simulate import simulate_batches
from bayesbio.space import ColumnSpec, Factor, ProcessSpace, Response
from bayesbio.study import quick_config, run_study

_POOL = (
    Factor("temperature", "degC", (25.0, 32.0), (4.0, 50.0), "Temperature", short="temp"),
    Factor("ph", "pH", (6.0, 7.0), (4.0, 9.0), "pH"),
    Factor("agitation", "rpm", (200.0, 800.0), (0.0, 2000.0), "Agitation", short="agit"),
    Factor("feed_rate", "mL/h", (2.0, 10.0), (0.0, 50.0), "Feed rate", short="feed"),
    Factor("dissolved_oxygen", "% air sat.", (20.0, 60.0), (0.0, 150.0), "DO", short="do"),
    Factor("inducer", "mM", (0.1, 1.0), (0.0, 5.0), "Inducer", short="iptg"),
)


def _space(k: int) -> ProcessSpace:
    return ProcessSpace(
        factors=_POOL[:k],
        response=Response("titer", "g/L", (0.0, 200.0), "maximise", "Titer"),
        groups=("scale", "site"),
        name=f"{k}-factor test process",
    )


@pytest.mark.slow
@pytest.mark.parametrize("k", [1, 2, 3, 5, 6])
def test_study_end_to_end_for_k_factors(k, tmp_path):
    space = _space(k)
    config = quick_config(n_batches=36, cv_splits=2, draws=150, tune=150)
    result = run_study(tmp_path / f"k{k}", config=config, random_seed=11, space=space)
    assert result.model.space_.fingerprint == space.fingerprint
    assert result.model.diagnostics_ is not None and len(result.model.diagnostics_) > 0
    recs = pd.read_csv(result.out_dir / "recommendations.csv")
    assert len(recs) >= 1
    for f in space.factors:
        col = recs[f.short] if f.short in recs.columns else recs[f.name]
        assert col.between(*f.operating).all(), f.name
    html = result.report_path.read_text()
    assert f"{k}-factor test process" in html
    for f in space.factors:
        assert f.label in html
    assert list((result.out_dir / "figures").glob("design_space_*.png"))


def test_minutes_declared_in_the_process_give_the_same_recommendation_as_seconds():
    space = ProcessSpace.default()
    table = simulate_batches(40, random_seed=3).table
    minutes = table.rename(columns={"mixing_time": "Mixing time (min)"})
    minutes["Mixing time (min)"] = minutes["Mixing time (min)"] / 60.0
    declared = space.with_changes(columns=(ColumnSpec("Mixing time (min)", "mixing_time", "min"),))
    in_s, _ = clean(table, space=space)
    in_min, log = clean(minutes, space=declared)
    assert (log["action"] == "converted").any()
    np.testing.assert_allclose(
        in_s["mixing_time"].to_numpy(), in_min["mixing_time"].to_numpy(), rtol=1e-12
    )
    group = {"scale": "2000L", "site": "A"}
    best_s = argmax_setpoint(ForestYield(random_state=0).fit(in_s), group=group, random_seed=0)
    best_min = argmax_setpoint(ForestYield(random_state=0).fit(in_min), group=group, random_seed=0)
    pd.testing.assert_series_equal(
        pd.Series(best_s).astype(float), pd.Series(best_min).astype(float), rtol=1e-9
    )
