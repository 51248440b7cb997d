"""The parts of bayesbio.recommend on their own: objectives, sampler, acquisition, search."""

import numpy as np
import pandas as pd
import pytest

from bayesbio.recommend import Constraints, Objective, argmax_setpoint
from bayesbio.recommend.acquisition import INFEASIBLE, UNSAFE, SafeImprovement, p_better
from bayesbio.recommend.context import build_context
from bayesbio.recommend.sampler import Evaluator
from bayesbio.recommend.search import candidates, local_search
from bayesbio.recommend.support import sd_ratio_fn
from bayesbio.space import Factor, ProcessSpace, Response

SPACE = ProcessSpace(
    factors=(
        Factor("temperature", "degC", operating=(30.0, 40.0), limits=(20.0, 50.0)),
        Factor("feed", "g/L/h", operating=(0.0, 10.0), limits=(0.0, 20.0)),
    ),
    response=Response("titer", "g/L", limits=(0.0, 100.0)),
    groups=("site",),
)


class Bowl:
    """Fake fitted model: mean ``top - 4 (u - vertex)^2`` summed over factors (u in [0, 1]).

    Posterior draws shift the vertex by ``vertex_sd``; new-batch noise is Normal(0, 0.2);
    draws are picked from a fixed pool by ``random_seed``.
    """

    def __init__(self, table, *, vertex=(0.7, 0.3), vertex_sd=0.0, top=10.0, sign=1.0):
        rng = np.random.default_rng(0)
        self.vertex = np.asarray(vertex) + vertex_sd * rng.standard_normal((2000, 2))
        self.top, self.sign = top, sign
        self.training_table_ = table
        self.space_ = SPACE if sign > 0 else _minimise(SPACE)
        self.groups_ = ["site"]

    def _mean(self, X, idx):
        u = (X[["temperature", "feed"]].to_numpy(dtype=float) - [30.0, 0.0]) / [10.0, 10.0]
        d2 = ((u[None, :, :] - self.vertex[idx][:, None, :]) ** 2).sum(axis=2)
        return self.top - self.sign * 4.0 * d2

    def predict_draws(self, X, *, n_draws=1000, noise=True, kind="existing", random_seed=None):
        rng = np.random.default_rng(random_seed)
        mu = self._mean(X, rng.integers(len(self.vertex), size=n_draws))
        return mu + 0.2 * rng.standard_normal(mu.shape) if noise else mu

    def predict(self, X):
        return self._mean(X, np.arange(len(self.vertex))).mean(axis=0)


def _minimise(space):
    r = space.response
    return ProcessSpace(
        factors=space.factors,
        response=Response(r.name, r.unit, limits=r.limits, direction="minimise"),
        groups=space.groups,
    )


def _table(n=30, seed=0):
    rng = np.random.default_rng(seed)
    t = pd.DataFrame(
        {"temperature": 35.0 + rng.normal(0, 1.0, n), "feed": 5.0 + rng.normal(0, 1.0, n)}
    )
    t.insert(0, "site", np.where(np.arange(n) % 2 == 0, "A", "B"))
    t["titer"] = 5.0
    return t


def test_objective_scores_are_maximised_and_values_keep_the_unit():
    draws = np.arange(1.0, 11.0)[:, None] * np.array([[1.0, 2.0]])  # two columns of 10 draws
    cvar = Objective("cvar", risk=0.2, spec=None)
    assert cvar.score(draws) == pytest.approx([1.5, 3.0])  # mean of the lowest 2 draws
    assert cvar.value(draws) == pytest.approx([1.5, 3.0])
    low = Objective("cvar", risk=0.2, spec=None, sign=-1.0)  # a response to minimise
    assert low.score(draws) == pytest.approx([-9.5, -19.0])  # minus the highest 2
    assert low.value(draws) == pytest.approx([9.5, 19.0])
    spec = Objective("prob_spec", risk=0.1, spec=6.0)
    assert spec.value(draws) == pytest.approx([0.5, 0.8])  # y >= 6
    assert Objective("prob_spec", risk=0.1, spec=6.0, sign=-1.0).value(draws) == pytest.approx(
        [0.6, 0.3]  # y <= 6
    )
    assert "lowest 20 %" in cvar.describe(SPACE) and "titer" in cvar.describe(SPACE)


def test_evaluator_shares_posterior_draws_between_calls():
    model = Bowl(_table(), vertex_sd=0.1)
    ctx = build_context(model, {"site": "A"}, "auto", None)
    ev = Evaluator(model, ctx, n_draws=200, seed=3, execution_sd=np.zeros(2))
    a, b = np.array([[33.0, 4.0]]), np.array([[37.0, 6.0]])
    both = ev.raw(np.vstack([a, b]), noise=False)
    assert np.array_equal(both[:, :1], ev.raw(a, noise=False))
    assert np.array_equal(both[:, 1:], ev.raw(b, noise=False))
    assert ev.calls == 3
    assert ev.mean(a) == pytest.approx(model.predict(ctx.frame(a)))


def test_safe_improvement_gates_on_p_better_and_penalises_outside_support():
    model = Bowl(_table(), vertex=(0.5, 0.5), vertex_sd=0.3)
    ctx = build_context(model, {"site": "A"}, "auto", Constraints(max_sd_ratio=None))
    ev = Evaluator(model, ctx, n_draws=400, seed=1, execution_sd=np.zeros(2))
    recipe = ctx.clip(ctx.recipe[None])
    obj = Objective("mean", risk=0.1, spec=None)
    acq = SafeImprovement(ev, ctx, obj, recipe, sd_ratio_fn(ev, ctx), False, confidence=0.9)
    near = recipe + np.array([[0.3, 0.0]])  # a small step: P(better) well short of 0.9
    far = np.array([[40.0, 10.0]])  # a corner no batch ran
    scores = acq(np.vstack([recipe, near, far]))
    f = ev.raw(np.vstack([recipe, near]), noise=False)
    p = p_better(1.0, f, f[:, :1])
    assert p[1] < 0.9
    assert scores[1] == pytest.approx(UNSAFE + p[1])
    assert scores[2] < INFEASIBLE / 2
    open_gate = SafeImprovement(ev, ctx, obj, recipe, sd_ratio_fn(ev, ctx), False, 0.0)
    assert open_gate(near)[0] == pytest.approx(f[:, 1].mean())


def test_candidates_put_the_recipe_first_inside_the_box():
    model = Bowl(_table())
    ctx = build_context(model, {"site": "B"}, "auto", Constraints(bounds={"feed": (2.0, 8.0)}))
    r0 = ctx.clip(ctx.recipe[None])
    cands = candidates(ctx, r0, 64, np.random.default_rng(0))
    assert np.array_equal(cands[0], r0[0])
    assert len(np.unique(cands, axis=0)) == len(cands)
    assert cands[:, 1].min() >= 2.0 and cands[:, 1].max() <= 8.0
    assert len(cands) >= 64 + 1


def test_local_search_refines_a_nearby_start_to_the_vertex_of_a_bowl():
    model = Bowl(_table(), vertex=(0.8, 0.25))
    ctx = build_context(model, {"site": "A"}, "auto", Constraints(guard=False))
    rng = np.random.default_rng(0)
    start = np.array([[36.5, 4.0]])  # 0.15 of the ranges away: a refinement, not a global search
    best = local_search(lambda x: model.predict(ctx.frame(x)), ctx, start, rng)[0]
    assert best == pytest.approx([38.0, 2.5], abs=0.05)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_argmax_setpoint_is_the_mean_optimum_in_either_direction(sign):
    model = Bowl(_table(), vertex=(0.9, 0.1), sign=sign)
    best = argmax_setpoint(model, group={"site": "A"}, random_seed=0)
    assert best["temperature"] == pytest.approx(39.0, abs=0.1)
    assert best["feed"] == pytest.approx(1.0, abs=0.1)
    assert best["titer"] == pytest.approx(10.0, abs=1e-3)
    assert best.attrs["direction"] == ("maximise" if sign > 0 else "minimise")
    again = argmax_setpoint(model, group={"site": "A"}, random_seed=0)
    assert again.equals(best)  # same seed, same setpoint
    with pytest.raises(ValueError, match="n_candidates"):
        argmax_setpoint(model, n_candidates=0)


@pytest.mark.parametrize("which", ["group", "overall"])
def test_support_bounding_box_holds_every_supported_point(which):
    model = Bowl(_table())
    ctx = build_context(model, {"site": "A"}, "auto", None)
    limit = ctx.res.max_distance
    lo, hi = ctx.support.bounding_box(which, limit)
    rng = np.random.default_rng(0)
    points = np.column_stack([rng.uniform(20, 50, 200_000), rng.uniform(0, 20, 200_000)])
    inside = ctx.support.distance(points, which) <= limit
    assert inside.sum() > 100
    assert (points[inside] >= lo - 1e-9).all() and (points[inside] <= hi + 1e-9).all()
    # and the box is tight: supported points reach close to each face
    assert points[inside].min(axis=0) == pytest.approx(lo, abs=0.1)
    assert points[inside].max(axis=0) == pytest.approx(hi, abs=0.1)


@pytest.mark.parametrize("attribute", ["batch_weight_", "failure_prob_"])
def test_a_batch_the_fit_discounts_does_not_vouch_for_its_neighbourhood(attribute):
    """A lone batch of the group far out (a true cliff the model reads as an outlier)."""
    table = _table()
    table.loc[0, ["temperature", "feed"]] = [39.0, 9.0]  # site A, far from the others
    table.insert(0, "batch_id", [f"B{i:02d}" for i in range(len(table))])
    far = table.loc[[0], ["temperature", "feed"]].to_numpy(dtype=float)
    trusted = build_context(Bowl(table), {"site": "A"}, "auto", None)
    assert trusted.support.guard_distance(far, "group")[0] == pytest.approx(0.0, abs=1e-9)
    assert not any("weigh little" in n for n in trusted.notes)
    model = Bowl(table)
    low = 0.05 if attribute == "batch_weight_" else 0.99  # outlying / failed
    setattr(model, attribute, pd.Series(np.where(table.index == 0, low, 1.0 - low), table.index))
    ctx = build_context(model, {"site": "A"}, "auto", None)
    assert ctx.support.guard_distance(far, "group")[0] > ctx.res.max_distance
    assert any("1 batch(es) of the target group weigh little in the fit" in n and "B00" in n
               for n in ctx.notes)  # fmt: skip
    # the group's other batches still support their own neighbourhood
    near = table.loc[[2], ["temperature", "feed"]].to_numpy(dtype=float)
    assert ctx.support.guard_distance(near, "group")[0] == pytest.approx(0.0, abs=1e-9)


def test_design_space_grid_covers_the_support_not_the_whole_box():
    from bayesbio.recommend import design_space

    model = Bowl(_table(), vertex=(0.5, 0.5))
    kw = {"group": {"site": "A"}, "resolution": 9, "map_resolution": 5, "n_draws": 200}
    ds = design_space(model, 9.0, 0.9, random_seed=0, **kw)
    box = design_space(model, 9.0, 0.9, constraints={"guard": False}, random_seed=0, **kw)
    t_lo, t_hi = ds.settings["grid_bounds"]["temperature"]
    assert 30.0 < t_lo < 35.0 < t_hi < 40.0  # the batches ran at 35 +- 1 degC
    assert box.settings["grid_bounds"]["temperature"] == (30.0, 40.0)
    assert any("grid cut to the box around the data support" in n for n in ds.settings["notes"])
    assert ds.grid["supported"].mean() > 0.3  # against a few % over the whole box
    assert ds.grid["inside"].sum() > 10 and np.isfinite(ds.par["low"]).all()
    assert ds.maps[("temperature", "feed")]["temperature"].min() == 30.0  # slices: whole box


def test_the_summary_reads_the_expected_response_without_new_batch_noise(space_k2, table_k2):
    # new-batch noise with no finite mean (Cauchy on the log scale): the mean of noisy draws
    # would be dominated by a few astronomical draws; the expected response must not be
    import warnings

    from fakes import Parabola

    from bayesbio.recommend import BoundWarning, recommend

    model = Parabola(space_k2, table_k2, heavy_tails=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundWarning)  # the fake's titer rises with agitation
        rec = recommend(model, group={"site": "North"}, n_draws=400, random_seed=3)
    summary = rec.summary
    assert (summary["expected_yield"].between(1.0, 3.0)).all()  # the parabola's mean titer
    assert (summary["sd"] < 1.0).all()  # posterior SD of the mean, not of a new batch
    point = rec.setpoint.to_frame().T.assign(site="North")
    f = model.predict_draws(point, n_draws=4000, noise=False, random_seed=0)
    assert rec.expected_yield == pytest.approx(float(f.mean()), rel=0.05)
    assert (
        summary.loc["recommended", "q05"] < rec.expected_yield < summary.loc["recommended", "q95"]
    )


def test_rows_at_the_same_setpoint_get_the_same_summary(space_k2, table_k2):
    from fakes import Parabola

    from bayesbio.recommend import recommend

    model = Parabola(space_k2, table_k2, heavy_tails=True)
    recipe = {"temperature": 30.0, "agitation": 200.0}
    # both factors held at the recipe: the three rows are one setpoint, so one summary
    rec = recommend(
        model,
        group={"site": "North"},
        recipe=recipe,
        constraints={"fixed": recipe},
        n_draws=300,
        random_seed=1,
    )
    cols = ["expected_yield", "sd", "q05", "q50", "q95", "cvar", "objective_value"]
    rows = rec.summary[cols]
    for row in ("recommended", "mean_optimal"):
        pd.testing.assert_series_equal(rows.loc[row], rows.loc["recipe"], check_names=False)


def test_common_noise_keeps_the_models_own_quantiles_under_heavy_tails(space_k2, table_k2):
    from fakes import Parabola

    model = Parabola(space_k2, table_k2, heavy_tails=True)
    ctx = build_context(model, {"site": "North"}, "auto", None)
    ev = Evaluator(model, ctx, n_draws=1000, seed=2, execution_sd=np.zeros(2))
    points = np.column_stack([np.linspace(30.0, 32.0, 7), np.full(7, 200.0)])
    f, y = ev.raw(points, noise=False), ev.raw(points, noise=True)
    assert ev.calibrate_noise(f, y)
    shared = ev.add_noise(f)
    # the transplanted noise is the model's own noise at the reference setpoint: the
    # quantiles objectives read are the model's (up to the rescaling across setpoints), not
    # shifted by the mean of a few extreme draws
    levels = [0.05, 0.1, 0.5, 0.9]
    own, common = np.quantile(y, levels, axis=0), np.quantile(shared, levels, axis=0)
    # (per setpoint the model's own quantiles carry their Monte Carlo noise: compare typical)
    np.testing.assert_allclose(np.median(common, axis=1), np.median(own, axis=1), rtol=0.4)
    # a titer: the lower tail stays near zero, and no draw leaves the declared limits (a
    # heavy lower tail moved to a setpoint with a lower mean is held at zero, not below)
    lo, hi = space_k2.response.limits
    assert (shared > 0).mean() > 0.99 and (shared >= lo).all() and (shared <= hi).all()


def test_next_batches_reads_a_typical_batch_noise_under_heavy_tails(space_k2, table_k2):
    from fakes import Parabola

    from bayesbio.recommend import next_batches

    # Cauchy noise on the log scale: its plain SD is a few extreme draws; the value of one
    # more batch must be judged with the noise of a typical batch
    model = Parabola(space_k2, table_k2, heavy_tails=True)
    cand = pd.DataFrame({"temperature": [28.0, 31.0, 34.0], "agitation": [200.0] * 3})
    ranked = next_batches(model, cand, k=3, group={"site": "North"}, random_seed=0)
    # IQR of exp(0.3 t_1) around a titer of ~2 g/L, over 1.349: about 0.9 g/L at most
    assert (ranked["noise_sd"] < 1.5).all() and (ranked["noise_sd"] > 0.1).all()
    assert ranked["expected_regret_reduction"].max() > 0


def test_group_text_names_groups_as_people_read_them():
    from bayesbio.recommend.messages import group_text

    assert group_text({"scale": "2000L", "site": "A"}) == "scale 2000L, site A"
    assert group_text({"Werk": "Werk Süd", "Reaktor": "3 m3"}) == "Werk Süd, Reaktor 3 m3"
    assert group_text(None) == "all batches"
    assert group_text({"site": "C"}, "new_group") == "site C (new group)"
    assert group_text({"site": "A"}, "population") == "site A (population mean)"
