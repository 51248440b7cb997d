from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayesbio import schema
from bayesbio.simulate import (
    DEFAULT_DEFECT_RATES,
    DEFECT_KINDS,
    DESIGNS,
    DO_MG_PER_L_AT_100_PERCENT,
    GroupLevel,
    ProcessBiology,
    SimulatedBatches,
    Truth,
    simulate_batches,
)
from bayesbio.space import Factor, ProcessSpace, Response

SPACE = ProcessSpace.default()
PARAMS = list(SPACE.factor_names)
COLUMNS = ["batch_id", "scale", "site", "campaign", *PARAMS, "yield"]


@pytest.fixture(scope="module")
def hist():
    return simulate_batches(3000, random_seed=11)


@pytest.fixture(scope="module")
def dirty():
    return simulate_batches(3000, defects=True, random_seed=11)


@pytest.fixture(scope="module")
def truth(hist):
    return hist.truth


def _bounds_arrays():
    lo = np.array([SPACE.bounds[p][0] for p in PARAMS])
    hi = np.array([SPACE.bounds[p][1] for p in PARAMS])
    return lo, hi


# -- shape, determinism ------------------------------------------------------------------------
def test_result_is_a_named_tuple_with_schema_columns(hist):
    assert isinstance(hist, SimulatedBatches)
    table, truth, labels = hist
    assert list(table.columns) == COLUMNS
    assert len(table) == 3000
    assert table["batch_id"].is_unique
    assert table["batch_id"].iloc[0] == "B0001"
    assert labels.empty
    assert list(labels.columns) == [
        "row",
        "batch_id",
        "column",
        "defect",
        "true_value",
        "recorded_value",
    ]
    assert truth is hist.truth


@pytest.mark.parametrize("design", DESIGNS)
def test_same_seed_gives_same_table_and_other_seed_differs(design):
    a = simulate_batches(300, design=design, defects=True, random_seed=3)
    b = simulate_batches(300, design=design, defects=True, random_seed=3)
    c = simulate_batches(300, design=design, defects=True, random_seed=4)
    pd.testing.assert_frame_equal(a.table, b.table)
    pd.testing.assert_frame_equal(a.defects, b.defects)
    assert not a.table[PARAMS].equals(c.table[PARAMS])


def test_generator_seed_is_accepted_and_threaded():
    a = simulate_batches(200, random_seed=np.random.default_rng(5))
    b = simulate_batches(200, random_seed=np.random.default_rng(5))
    pd.testing.assert_frame_equal(a.table, b.table)


def test_world_depends_only_on_seed_not_on_n_or_design():
    a = simulate_batches(50, random_seed=8).truth
    b = simulate_batches(500, design="doe", random_seed=8).truth
    pd.testing.assert_frame_equal(a.group_effects, b.group_effects)
    pd.testing.assert_series_equal(a.campaign_effects, b.campaign_effects)


def test_single_batch_works():
    sim = simulate_batches(1, defects=True, random_seed=0)
    assert len(sim.table) == 1
    schema.validate(sim.table)


# -- ranges and group structure ----------------------------------------------------------------
@pytest.mark.parametrize("design", DESIGNS)
def test_clean_table_passes_schema_validation(design):
    table = simulate_batches(500, design=design, random_seed=1).table
    out = schema.validate(table, groups=["scale", "site", "campaign"])
    assert len(out) == 500


def test_historical_is_mostly_inside_operating_bounds_and_near_recipe(hist):
    table = hist.table
    for p in PARAMS:
        lo, hi = SPACE.bounds[p]
        inside = table[p].between(lo, hi).mean()
        assert inside > 0.9, p
        llo, lhi = SPACE.limits[p]
        assert table[p].between(llo, lhi).all(), p
    # plant history clusters: the central 80 % spans a small part of the range
    for p in ["temperature", "ph", "dissolved_oxygen"]:
        lo, hi = SPACE.bounds[p]
        spread = table[p].quantile(0.9) - table[p].quantile(0.1)
        assert spread < 0.35 * (hi - lo), p


@pytest.mark.parametrize("design", ["doe", "uniform"])
def test_doe_and_uniform_stay_inside_operating_bounds(design):
    table = simulate_batches(400, design=design, random_seed=2).table
    for p in PARAMS:
        lo, hi = SPACE.bounds[p]
        assert table[p].between(lo, hi).all(), p


def test_doe_is_a_latin_hypercube_with_uniform_marginals():
    n = 60
    table = simulate_batches(n, design="doe", random_seed=6).table
    for p in PARAMS:
        lo, hi = SPACE.bounds[p]
        u = (table[p].to_numpy() - lo) / (hi - lo)
        # one point per stratum (up to the recorded rounding at stratum edges)
        counts = np.bincount(np.minimum((u * n).astype(int), n - 1), minlength=n)
        assert (counts == 1).mean() > 0.9, p
        assert stats.kstest(u, "uniform").statistic < 1.5 / n, p
    hist = simulate_batches(n, random_seed=6).table
    u = (hist["temperature"] - 30.0) / 9.0
    assert stats.kstest(u, "uniform").statistic > 0.3


def test_yields_are_in_a_realistic_titer_range(hist):
    y = hist.table["yield"]
    assert y.min() > 0.3
    assert y.max() < 12
    assert 1.0 < y.quantile(0.01) and y.quantile(0.99) < 9.0
    assert 3.0 < y.median() < 8.0


def test_groups_are_unbalanced_and_all_present(hist):
    counts = hist.table.groupby(["scale", "site"]).size()
    assert len(counts) == 9
    assert counts.min() < counts.max() / 3
    assert hist.table["campaign"].nunique() == 6
    assert len(hist.truth.groups) == 9


def test_larger_scales_have_longer_mixing_times(hist):
    med = hist.table.groupby("scale")["mixing_time"].median()
    assert med["2L"] < med["200L"] < med["2000L"]


def test_group_configuration_is_an_argument():
    sim = simulate_batches(
        400,
        scales={"5L": {"yield_factor": 1.1, "weight": 2.0}, "2000L": {}},
        sites={"X": 1.0, "Y": 3.0},
        n_campaigns=2,
        random_seed=1,
    )
    assert set(sim.table["scale"]) == {"5L", "2000L"}
    assert set(sim.table["site"]) == {"X", "Y"}
    assert set(sim.table["campaign"]) == {"CMP01", "CMP02"}
    counts = sim.table["site"].value_counts()
    assert counts["Y"] > 2 * counts["X"]
    ge = sim.truth.group_effects.set_index(["scale", "site"])
    assert ge.loc[("5L", "X"), "yield_max"] > ge.loc[("2000L", "X"), "yield_max"]
    picked = simulate_batches(50, scales=["2L"], sites=["A"], random_seed=1).table
    assert set(picked["scale"]) == {"2L"} and set(picked["site"]) == {"A"}


# -- truth ---------------------------------------------------------------------------------------
def test_noise_cv_matches_truth():
    table, truth, _ = simulate_batches(20000, design="uniform", random_seed=21)
    ratio = table["yield"] / truth.mean_yield(table)
    assert abs(ratio.mean() - 1.0) < 0.003
    assert abs(ratio.std() - truth.noise_cv) < 0.003
    sd = truth.noise_sd(table)
    np.testing.assert_allclose(sd, truth.noise_cv * truth.mean_yield(table))


def test_noise_cv_argument_sets_the_noise():
    table = simulate_batches(5000, design="uniform", noise_cv=0.0, random_seed=21)
    ratio = table.table["yield"] / table.truth.mean_yield(table.table)
    np.testing.assert_allclose(ratio, 1.0, atol=1e-3)


def test_mean_yield_is_vectorised_and_matches_table_groups(hist, truth):
    table = hist.table
    mu = truth.mean_yield(table)
    assert mu.shape == (len(table),)
    assert np.isfinite(mu).all() and (mu > 0).all()
    row = table.iloc[[7]]
    one = truth.mean_yield(
        row[PARAMS].to_numpy(), group=row[["scale", "site", "campaign"]].iloc[0].to_dict()
    )
    np.testing.assert_allclose(one, mu[7])


def test_group_override_and_campaign_shift(truth):
    X = pd.DataFrame({p: [np.mean(SPACE.bounds[p])] for p in PARAMS})
    base = truth.mean_yield(X, group={"scale": "2L", "site": "A"})
    unseen = truth.mean_yield(X, group={"scale": "2L", "site": "A", "campaign": "new"})
    shifted = truth.mean_yield(X, group={"scale": "2L", "site": "A", "campaign": "CMP01"})
    np.testing.assert_allclose(base, unseen)
    np.testing.assert_allclose(shifted, base * truth.campaign_effects["CMP01"])
    big = truth.mean_yield(X.assign(scale="2L", site="A"), group={"scale": "2000L"})
    assert big[0] != base[0]


def test_mean_yield_errors_name_the_problem(truth):
    X = pd.DataFrame({p: [np.mean(SPACE.bounds[p])] for p in PARAMS})
    with pytest.raises(ValueError, match="'scale'"):
        truth.mean_yield(X)
    with pytest.raises(ValueError, match="unknown scale"):
        truth.mean_yield(X, group={"scale": "20L", "site": "A"})
    with pytest.raises(ValueError, match="missing parameter"):
        truth.mean_yield(X.drop(columns="ph"), group={"scale": "2L", "site": "A"})


def test_response_is_nonlinear_with_interior_optimum_in_temperature_and_ph(truth):
    for g in truth.groups.to_dict("records"):
        opt = truth.optimum(g)
        best = opt[PARAMS]
        for p in ["temperature", "ph", "dissolved_oxygen"]:
            lo, hi = SPACE.bounds[p]
            assert lo + 0.05 * (hi - lo) < best[p] < hi - 0.05 * (hi - lo), (g, p)
            X = pd.DataFrame([best, best, best])
            X[p] = [lo, best[p], hi]
            y = truth.mean_yield(X, group=g)
            # temperature and pH: clearly interior; DO: a flat Haldane top at large scale
            margin = 0.05 if p != "dissolved_oxygen" else 0.0
            assert y[0] < y[1] - 0.05 and y[2] < y[1] - margin, (g, p)
        # mixing: longer is worse and saturates
        X = pd.DataFrame([best] * 3)
        X["mixing_time"] = [10.0, 60.0, 120.0]
        y = truth.mean_yield(X, group=g)
        assert y[0] > y[1] > y[2]
        assert y[0] - y[1] > y[1] - y[2]


def test_oxygen_demand_rises_with_temperature(truth):
    g = {"scale": "200L", "site": "A"}
    do = np.linspace(10, 80, 141)
    best_do = []
    for temp in [32.0, 38.0]:
        X = pd.DataFrame(
            {"mixing_time": 30.0, "temperature": temp, "ph": 7.0, "dissolved_oxygen": do}
        )
        best_do.append(do[np.argmax(truth.mean_yield(X, group=g))])
    assert best_do[1] > best_do[0] + 2


def test_optimum_shifts_with_scale(truth):
    small = truth.optimum({"scale": "2L", "site": "A"})
    large = truth.optimum({"scale": "2000L", "site": "A"})
    assert large["temperature"] < small["temperature"] - 0.5
    assert large["ph"] < small["ph"]
    assert large["dissolved_oxygen"] > small["dissolved_oxygen"] + 5
    assert large["yield"] < small["yield"]
    assert list(small.index) == [*PARAMS, "yield"]


def test_optimum_is_a_true_maximum(truth):
    rng = np.random.default_rng(0)
    lo, hi = _bounds_arrays()
    for g in [{"scale": "2L", "site": "B"}, {"scale": "2000L", "site": "C"}]:
        opt = truth.optimum(g)
        x0 = opt[PARAMS].to_numpy(dtype=float)
        np.testing.assert_allclose(truth.mean_yield(x0, group=g), opt["yield"])
        near = x0 + rng.normal(0, 0.02, (3000, 4)) * (hi - lo)
        anywhere = rng.uniform(lo, hi, (3000, 4))
        cand = np.clip(np.vstack([near, anywhere]), lo, hi)
        assert truth.mean_yield(cand, group=g).max() <= opt["yield"] + 1e-7
        assert ((x0 >= lo - 1e-9) & (x0 <= hi + 1e-9)).all()


def test_optimum_is_cached_and_campaign_scales_yield_only(truth):
    g = {"scale": "200L", "site": "B"}
    a = truth.optimum(g)
    a["yield"] = -1.0  # a copy: mutating it must not touch the cache
    b = truth.optimum(g)
    assert b["yield"] > 0
    c = truth.optimum({**g, "campaign": "CMP02"})
    np.testing.assert_allclose(c[PARAMS], b[PARAMS], atol=1e-3)
    np.testing.assert_allclose(c["yield"], b["yield"] * truth.campaign_effects["CMP02"], rtol=1e-6)
    with pytest.raises(ValueError, match="'site'"):
        truth.optimum({"scale": "2L"})


def test_sample_yield_is_seeded(truth):
    X = pd.DataFrame({p: [np.mean(SPACE.bounds[p])] * 4 for p in PARAMS})
    g = {"scale": "2L", "site": "A"}
    a = truth.sample_yield(X, g, random_seed=1)
    np.testing.assert_array_equal(a, truth.sample_yield(X, g, random_seed=1))
    assert not np.allclose(a, truth.mean_yield(X, g))


# -- defects -------------------------------------------------------------------------------------
def test_defect_labels_match_the_table(dirty):
    table, _, labels = dirty
    assert set(labels["defect"]) == set(DEFECT_KINDS)
    for r in labels.itertuples():
        value = table.at[r.row, r.column]
        if pd.isna(r.recorded_value):
            assert pd.isna(value), r
        else:
            assert value == r.recorded_value, r
        assert table.at[r.row, "batch_id"] == r.batch_id
    # one defect per row, no stacking
    assert labels["row"].is_unique


def test_defect_counts_follow_rates(dirty):
    counts = dirty.defects["defect"].value_counts()
    for kind, rate in DEFAULT_DEFECT_RATES.items():
        assert counts[kind] == round(rate * 3000), kind
    n_dup = counts["duplicate_exact"] + counts["duplicate_near"]
    assert len(dirty.table) == 3000 + n_dup


def test_defect_rates_mapping_selects_kinds():
    sim = simulate_batches(1000, defects={"unit_kelvin": 0.05, "missing": 0.0}, random_seed=2)
    assert set(sim.defects["defect"]) == {"unit_kelvin"}
    assert len(sim.defects) == 50


def test_clean_rows_are_recoverable(dirty):
    clean = simulate_batches(3000, random_seed=11).table
    pd.testing.assert_frame_equal(dirty.clean_table, clean)
    labelled = set(dirty.defects["row"])
    untouched = [i for i in range(len(dirty.table)) if i not in labelled]
    kept = dirty.table.iloc[untouched]
    merged = kept.merge(clean, on="batch_id", suffixes=("", "_clean"))
    assert len(merged) == len(kept)
    for c in COLUMNS[1:]:
        assert (merged[c] == merged[f"{c}_clean"]).all(), c


def test_defective_table_fails_validation_and_clean_table_passes(dirty):
    with pytest.raises(schema.SchemaError):
        schema.validate(dirty.table)
    schema.validate(dirty.clean_table)


def _labels(dirty, kind):
    return dirty.defects[dirty.defects["defect"] == kind]


def test_duplicates_keep_the_original_batch_id(dirty):
    table = dirty.table
    clean = dirty.clean_table.set_index("batch_id")
    for kind in ["duplicate_exact", "duplicate_near"]:
        lab = _labels(dirty, kind)
        assert (lab["column"] == "batch_id").all()
        for r in lab.itertuples():
            same = table.index[table["batch_id"] == r.batch_id]
            assert len(same) == 2 and same.min() < r.row  # the copy comes after the original
            copy = table.loc[r.row, COLUMNS[1:]]
            orig = clean.loc[r.batch_id, COLUMNS[1:]]
            if kind == "duplicate_exact":
                assert (copy == orig).all()
            else:
                diff = (copy[[*PARAMS, "yield"]] - orig[[*PARAMS, "yield"]]).abs()
                assert diff.max() > 0
                assert (diff.astype(float) <= np.array([0.5, 0.05, 0.005, 0.5, 0.1]) + 1e-9).all()
                assert (
                    copy[["scale", "site", "campaign"]] == orig[["scale", "site", "campaign"]]
                ).all()


def test_unit_slips_and_gross_errors_have_the_documented_form(dirty):
    def pairs(kind):
        lab = _labels(dirty, kind)
        return (
            lab["true_value"].astype(float).to_numpy(),
            lab["recorded_value"].astype(float).to_numpy(),
            lab,
        )

    t, r, lab = pairs("unit_kelvin")
    assert (lab["column"] == "temperature").all()
    np.testing.assert_allclose(r, t + 273.15, atol=0.006)
    t, r, lab = pairs("unit_fahrenheit")
    np.testing.assert_allclose(r, t * 1.8 + 32, atol=0.006)
    t, r, lab = pairs("unit_do_mg_per_l")
    assert (lab["column"] == "dissolved_oxygen").all()
    np.testing.assert_allclose(r, t * DO_MG_PER_L_AT_100_PERCENT / 100, atol=0.006)
    t, r, lab = pairs("outlier")
    assert (lab["column"] == "yield").all()
    ratio = r / t
    assert np.all(np.isclose(ratio, 3.0, rtol=1e-3) | np.isclose(ratio, 0.2, rtol=1e-2))
    t, r, lab = pairs("impossible")
    for col, rec in zip(lab["column"], r, strict=True):
        lo, hi = SPACE.limits[col]
        assert rec < lo or rec > hi, (col, rec)
    t, r, lab = pairs("missing")
    assert np.isnan(r).all() and np.isfinite(t).all()


def test_label_typos_are_recognisable_variants(dirty):
    lab = _labels(dirty, "label_typo")
    assert set(lab["column"]) <= {"scale", "site"}

    def norm(s):
        return s.strip().lower().removeprefix("site-").replace(" ", "")

    for r in lab.itertuples():
        assert r.recorded_value != r.true_value
        assert norm(r.recorded_value) == norm(r.true_value)


def test_defects_do_not_emit_warnings_for_large_n():
    sim = simulate_batches(20000, design="doe", defects=True, random_seed=3)
    assert len(sim.defects) > 0.07 * 20000


# -- argument checks -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 0}, "n must be"),
        ({"n": 2.5}, "n must be"),
        ({"n": 10, "design": "bogus"}, r"design must be one of \['historical', 'doe', 'uniform'\]"),
        ({"n": 10, "defects": {"typo": 0.1}}, "unknown kind.*label_typo"),
        ({"n": 10, "defects": {"missing": 1.5}}, r"defects\['missing'\]"),
        ({"n": 10, "defects": {"missing": -0.1}}, r"defects\['missing'\]"),
        ({"n": 10, "defects": {"missing": "a"}}, r"defects\['missing'\]"),
        ({"n": 10, "defects": {"missing": 0.6, "outlier": 0.6}}, "sum to"),
        ({"n": 10, "defects": "yes"}, "defects must be"),
        ({"n": 10, "scales": ["3L"]}, "scales names unknown"),
        ({"n": 10, "scales": {"2L": {"colour": 1}}}, r"scales\['2L'\] has unknown key"),
        ({"n": 10, "scales": {"2L": {"weight": -1}}}, "must be positive"),
        ({"n": 10, "sites": {"A": 0.0}}, "sites weights"),
        ({"n": 10, "sites": "A"}, "sites must be"),
        ({"n": 10, "n_campaigns": 0}, "n_campaigns"),
        ({"n": 10, "noise_cv": -0.1}, "noise_cv"),
        ({"n": 10, "excursion_rate": 2}, "excursion_rate"),
        ({"n": 10, "random_seed": "seed"}, "random_seed"),
    ],
)
def test_bad_arguments_raise_value_errors_naming_them(kwargs, match):
    n = kwargs.pop("n")
    with pytest.raises(ValueError, match=match):
        simulate_batches(n, **kwargs)


# -- the default space: pinned numbers -------------------------------------------------------------
def test_default_space_numbers_are_unchanged():
    """The demo world of seed 2024 as it was before process spaces existed."""
    for space in (None, ProcessSpace.default()):
        sim = simulate_batches(3, random_seed=2024, space=space)
        assert sim.table.to_dict("list") == {
            "batch_id": ["B0001", "B0002", "B0003"],
            "scale": ["2L", "200L", "2L"],
            "site": ["B", "A", "C"],
            "campaign": ["CMP01", "CMP03", "CMP04"],
            "mixing_time": [12.1, 36.2, 12.0],
            "temperature": [36.04, 36.47, 36.72],
            "ph": [7.02, 6.96, 7.001],
            "dissolved_oxygen": [47.7, 39.5, 48.2],
            "yield": [5.942, 5.422, 6.717],
        }
        best = sim.truth.optimum({"scale": "2L", "site": "A"})
        np.testing.assert_allclose(
            best.to_numpy(), [10.0, 36.309103, 7.008112, 46.464075, 6.701241], atol=2e-5
        )
    labels = simulate_batches(200, defects=True, random_seed=7).defects.head(4)
    assert labels["row"].tolist() == [5, 48, 56, 81]
    assert labels["defect"].tolist() == [
        "unit_do_mg_per_l",
        "missing",
        "unit_fahrenheit",
        "duplicate_near",
    ]
    assert labels["recorded_value"].iloc[2] == 98.53


# -- other process spaces --------------------------------------------------------------------------
K2 = ProcessSpace(
    (
        Factor("temp", "degF", (80.0, 95.0), (32.0, 212.0)),
        Factor("feed", "mL/h", (2.0, 10.0), (0.0, 100.0)),
    ),
    response=Response("titer", "mg/L", (0.0, 5000.0), typical=(50.0, 1500.0)),
    groups=("site",),
    batch_id="run",
    name="two-factor test process",
)
FED_BATCH = Path(__file__).resolve().parents[1] / "examples" / "microbial_fed_batch.toml"
K6 = ProcessSpace.from_toml(FED_BATCH)


@pytest.fixture(scope="module")
def k6():
    return simulate_batches(400, space=K6, defects=True, random_seed=5)


def _random_box(space, n, seed):
    rng = np.random.default_rng(seed)
    return space.lower + rng.random((n, space.k)) * (space.upper - space.lower)


@pytest.mark.parametrize("design", DESIGNS)
@pytest.mark.parametrize("space", [K2, K6], ids=["k2", "k6"])
def test_custom_space_table_has_the_space_columns(space, design):
    sim = simulate_batches(120, space=space, design=design, random_seed=3)
    table = sim.table
    assert list(table.columns) == [
        space.batch_id,
        *space.groups,
        *space.factor_names,
        space.response.name,
    ]
    assert len(table) == 120 and table[space.batch_id].is_unique
    assert isinstance(sim.truth, Truth) and sim.truth.space is space
    for f in space.factors:
        assert table[f.name].between(*f.limits).all(), f.name
        if design != "historical":
            assert table[f.name].between(*f.operating).all(), f.name
    y = table[space.response.name]
    assert (y > 0).all() and (y < space.response.limits[1]).all()
    mu = sim.truth.mean_yield(table)
    assert mu.shape == (120,) and np.isfinite(mu).all()
    assert sim.defects.empty and sim.defects.columns[1] == space.batch_id


@pytest.mark.parametrize("space", [K2, K6], ids=["k2", "k6"])
def test_custom_space_same_seed_same_table(space):
    a = simulate_batches(150, space=space, defects=True, random_seed=9)
    b = simulate_batches(150, space=space, defects=True, random_seed=9)
    c = simulate_batches(150, space=space, defects=True, random_seed=10)
    pd.testing.assert_frame_equal(a.table, b.table)
    pd.testing.assert_frame_equal(a.defects, b.defects)
    assert not a.table.equals(c.table)
    clean = simulate_batches(150, space=space, random_seed=9).table
    pd.testing.assert_frame_equal(a.clean_table, clean)


@pytest.mark.parametrize("space", [K2, K6], ids=["k2", "k6"])
def test_custom_truth_optimum_is_inside_the_box_and_beats_a_random_grid(space):
    truth = simulate_batches(20, space=space, random_seed=1).truth
    groups = truth.groups.to_dict("records")
    assert len(groups) == (3 if space is K2 else 9)
    for group in groups[:3]:
        best = truth.optimum(group)
        x = best[list(space.factor_names)].to_numpy()
        assert (x >= space.lower - 1e-9).all() and (x <= space.upper + 1e-9).all()
        box = _random_box(space, 20000, seed=2)
        values = truth.mean_yield(box, group=group)
        assert best[space.response.name] >= values.max() - 1e-6
        assert best[space.response.name] == pytest.approx(truth.mean_yield(x, group=group)[0])
        # the optimum is inside, off the centre, and the response varies over the box
        z = (x - space.centre) / space.half_width
        assert (np.abs(z) < 0.999).all() and (np.abs(z) > 0.05).any()
        assert values.min() < 0.8 * best[space.response.name]
    assert best.name == "/".join(group.values())


def test_custom_truth_errors_name_the_group():
    truth = simulate_batches(20, space=K2, random_seed=1).truth
    with pytest.raises(ValueError, match="'site'"):
        truth.optimum({})
    with pytest.raises(ValueError, match=r"unknown site.*'A', 'B', 'C'"):
        truth.mean_yield(np.array([[85.0, 5.0]]), group={"site": "Z"})
    with pytest.raises(ValueError, match=r"missing parameter column\(s\) \['feed'\]"):
        truth.mean_yield(pd.DataFrame({"temp": [85.0], "site": ["A"]}))


def test_custom_defects_match_the_space(k6):
    table, _, labels = k6
    kinds = set(labels["defect"])
    assert kinds == set(DEFECT_KINDS)
    for _, lab in labels.iterrows():
        assert table.loc[lab["row"], K6.batch_id] == lab[K6.batch_id]
    slips = labels[labels["defect"].str.startswith("unit_")]
    assert set(slips.loc[slips["defect"] != "unit_do_mg_per_l", "column"]) == {"temperature"}
    kelvin = slips[slips["defect"] == "unit_kelvin"]
    np.testing.assert_allclose(
        kelvin["recorded_value"].astype(float), kelvin["true_value"].astype(float) + 273.15
    )
    gross = labels[labels["defect"] == "impossible"]
    for _, lab in gross.iterrows():
        lo, hi = K6.limits[lab["column"]]
        assert not lo <= float(lab["recorded_value"]) <= hi
    typos = labels[labels["defect"] == "label_typo"]
    assert set(typos["column"]) <= {"scale", "site"}
    assert (typos["true_value"] != typos["recorded_value"]).all()


def test_unit_slips_only_where_the_unit_allows():
    sim = simulate_batches(200, space=K2, defects=True, random_seed=4)
    kinds = set(sim.defects["defect"])
    assert "unit_kelvin" in kinds and "unit_do_mg_per_l" not in kinds
    assert "unit_fahrenheit" not in kinds  # the factor is already in degF
    with pytest.raises(ValueError, match=r"unit_do_mg_per_l.*% air saturation"):
        simulate_batches(50, space=K2, defects={"unit_do_mg_per_l": 0.1})
    no_groups = K2.with_changes(groups=())
    with pytest.raises(ValueError, match=r"label_typo.*no group column"):
        simulate_batches(50, space=no_groups, defects={"label_typo": 0.1})
    plain = simulate_batches(50, space=no_groups, defects=True, random_seed=1)
    assert "label_typo" not in set(plain.defects["defect"])


def test_biology_sets_optimum_groups_and_noise():
    bio = ProcessBiology(
        optimum={"temp": 83.0, "feed": 8.0},
        baseline=900.0,
        interaction=(),
        groups={"site": {"North/1": GroupLevel(level=1.0), "South 2": GroupLevel(level=0.5)}},
        noise_cv=0.0,
    )
    sim = simulate_batches(300, space=K2, biology=bio, design="uniform", random_seed=2)
    assert set(sim.table["site"]) == {"North/1", "South 2"}
    np.testing.assert_allclose(sim.table["titer"], sim.truth.mean_yield(sim.table), rtol=1e-3)
    best = sim.truth.optimum({"site": "North/1"})
    assert best["temp"] == pytest.approx(83.0, abs=0.05)
    assert best["feed"] == pytest.approx(8.0, abs=0.05)
    assert best["titer"] == pytest.approx(900.0, rel=1e-6)
    assert sim.truth.optimum({"site": "South 2"})["titer"] == pytest.approx(450.0, rel=1e-6)
    full = ProcessBiology.for_space(K2, optimum={"temp": 83.0})
    assert set(full.width) == {"temp", "feed"} and full.optimum["temp"] == 83.0


def test_minimised_response_and_fixed_factor():
    factors = (
        Factor("temperature", "degC", (30.0, 37.0), (4.0, 50.0)),
        Factor("ph", "pH", (6.6, 7.4), (5.0, 9.0), fixed=7.0),
        Factor("feed", "g/L/h", (0.5, 3.0), (0.0, 10.0)),
    )
    space = ProcessSpace(factors, response=Response("impurity", "%", (0.0, 100.0), "minimise"))
    truth = simulate_batches(30, space=space, random_seed=3).truth
    group = truth.groups.iloc[0].to_dict()
    best = truth.optimum(group)
    assert best["ph"] == 7.0
    box = _random_box(space, 5000, seed=1)
    box[:, 1] = 7.0
    assert best["impurity"] <= truth.mean_yield(box, group=group).min() + 1e-6


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"biology": ProcessBiology(optimum={"tmp": 1.0})}, r"biology.optimum.*unknown.*'tmp'"),
        ({"biology": ProcessBiology(width={"temp": 0.0})}, r"biology.width\['temp'\]"),
        ({"biology": ProcessBiology(optimum={"temp": 500.0})}, "outside the limits"),
        ({"biology": ProcessBiology(baseline=1e6)}, "baseline.*outside the response limits"),
        ({"biology": ProcessBiology(interaction=("temp", "temp", 0.2))}, "two different"),
        ({"biology": ProcessBiology(groups={"scale": {}})}, "not a group column"),
        ({"biology": "auto"}, "biology must be a ProcessBiology"),
        ({"sites": ["A", "B"]}, "scales and sites configure the demo"),
    ],
)
def test_bad_biology_raises_naming_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate_batches(10, space=K2, **kwargs)


def test_space_can_be_a_toml_path():
    a = simulate_batches(30, space=str(FED_BATCH), random_seed=1)
    b = simulate_batches(30, space=K6, random_seed=1)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert "titer" in a.table.columns and "run_id" in a.table.columns
