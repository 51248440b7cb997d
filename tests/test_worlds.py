import numpy as np
import pandas as pd
import pytest

from bayesbio.space import ProcessSpace
from bayesbio.worlds import WORLDS, World, WorldSample, make_world

SPACE = ProcessSpace.default()
FACTORS = list(SPACE.factor_names)
LO, HI = SPACE.lower, SPACE.upper
NAMES = list(WORLDS)
COLUMNS = ["batch_id", "scale", "site", "campaign", *FACTORS, "yield"]


@pytest.fixture(scope="module")
def random_points() -> np.ndarray:
    return np.random.default_rng(123).uniform(LO, HI, size=(20_000, len(FACTORS)))


def test_registry_has_seven_distinct_worlds():
    assert len(WORLDS) >= 7
    worlds = [make_world(name, random_seed=0) for name in WORLDS]
    assert all(isinstance(w, World) for w in worlds)
    assert [w.name for w in worlds] == NAMES
    assert len({type(w) for w in worlds}) == len(worlds)
    assert all(w.description and type(w).__doc__ for w in worlds)


def test_unknown_world_lists_known_names():
    with pytest.raises(ValueError, match="known worlds") as err:
        make_world("no_such_world")
    for name in NAMES:
        assert name in str(err.value)


@pytest.mark.parametrize("name", NAMES)
def test_optimum_beats_random_search(name, random_points):
    world = make_world(name, random_seed=4)
    for group in ({"scale": "2L", "site": "A"}, {"scale": "2000L", "site": "C"}):
        opt = world.optimum(group)
        assert list(opt.index) == [*FACTORS, "yield"]
        x = opt[FACTORS].to_numpy(dtype=float)
        assert np.all(x >= LO - 1e-9) and np.all(x <= HI + 1e-9)
        best_random = world.mean_yield(random_points, group).max()
        assert opt["yield"] >= best_random - 1e-3 * best_random
        assert opt["yield"] == pytest.approx(world.mean_yield(x[None], group)[0], rel=1e-9)


@pytest.fixture(scope="module")
def grid_points() -> np.ndarray:
    """A dense grid over the operating box: 13 levels per factor (28,561 setpoints)."""
    axes = [np.linspace(lo, hi, 13) for lo, hi in zip(LO, HI, strict=True)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(FACTORS))


@pytest.mark.parametrize("name", NAMES)
def test_optimum_is_at_least_the_best_point_of_a_dense_grid(name, grid_points):
    world = make_world(name, random_seed=6)
    for group in ({"scale": "200L", "site": "B"}, {"scale": "2000L", "site": "A"}):
        opt = world.optimum(group)
        best = world.mean_yield(grid_points, group)
        assert opt["yield"] >= best.max() - 1e-6 * best.max(), (name, group)


@pytest.mark.parametrize("name", NAMES)
def test_mean_yield_positive_finite_and_group_forms_agree(name, random_points):
    world = make_world(name, random_seed=5)
    groups = world.groups
    assert list(groups.columns) == ["scale", "site"] and len(groups) == 9
    pts = random_points[:2700]
    frame = pd.DataFrame(pts, columns=FACTORS)
    frame = pd.concat(
        [frame, groups.iloc[np.arange(len(pts)) % len(groups)].reset_index(drop=True)], axis=1
    )
    mu = world.mean_yield(frame)
    assert mu.shape == (len(pts),)
    assert np.all(np.isfinite(mu)) and np.all(mu > 0) and mu.max() < 30
    row = frame.iloc[7]
    one = world.mean_yield(pts[7:8], {"scale": row["scale"], "site": row["site"]})
    assert one[0] == pytest.approx(mu[7])
    # campaigns shift the level; an unknown one does not
    camp = world.campaign_effects.index[0]
    shifted = world.mean_yield(frame.assign(campaign=camp))
    np.testing.assert_allclose(shifted, mu * world.campaign_effects[camp])
    np.testing.assert_allclose(world.mean_yield(frame.assign(campaign="CMP99")), mu)
    exp = world.expected_yield(frame)
    assert np.all(exp <= mu + 1e-12)
    if world.failure_rate == 0:
        np.testing.assert_allclose(exp, mu)
    sd = world.noise_sd(frame)
    assert np.all(np.isfinite(sd)) and np.all(sd > 0)


@pytest.mark.parametrize("name", NAMES)
def test_sample_reproducible_and_well_formed(name):
    world = make_world(name, random_seed=6)
    s1 = world.sample(60, random_seed=7)
    s2 = world.sample(60, random_seed=7)
    assert isinstance(s1, WorldSample) and s1.truth is world
    pd.testing.assert_frame_equal(s1.table, s2.table)
    np.testing.assert_array_equal(s1.failed, s2.failed)
    assert not s1.table.equals(world.sample(60, random_seed=8).table)
    table = s1.table
    assert list(table.columns) == COLUMNS
    assert table["batch_id"].is_unique
    x = table[FACTORS].to_numpy()
    assert np.all(x >= LO) and np.all(x <= HI)
    assert np.all(table["yield"] > 0)
    assert s1.failed.dtype == bool and s1.failed.shape == (60,)
    assert set(table["scale"]) <= {"2L", "200L", "2000L"}
    if world.failure_rate == 0:
        assert not s1.failed.any()


def test_historical_design_clusters_near_recipe():
    world = make_world("ridge", random_seed=1)
    table = world.sample(1000, random_seed=2).table
    recipes = world.recipes.set_index(["scale", "site"])
    centre = recipes.loc[list(zip(table["scale"], table["site"], strict=True)), FACTORS]
    near = (np.abs(table["temperature"].to_numpy() - centre["temperature"].to_numpy()) < 1.0) & (
        np.abs(table["ph"].to_numpy() - centre["ph"].to_numpy()) < 0.1
    )
    assert 0.6 <= near.mean() <= 0.8
    for design in ("doe", "uniform"):
        t = world.sample(40, random_seed=3, design=design).table
        assert t[FACTORS].std().gt(0).all()
    with pytest.raises(ValueError, match="design"):
        world.sample(10, random_seed=0, design="grid")
    with pytest.raises(ValueError, match="n must be"):
        world.sample(0, random_seed=0)


def test_failure_world_share_and_failed_yields():
    world = make_world("failures", random_seed=3)
    assert 0.03 <= world.failure_rate <= 0.10
    table, _, failed = world.sample(3000, random_seed=4)
    assert 0.03 <= failed.mean() <= 0.10
    ratio = table["yield"].to_numpy() / world.mean_yield(table)
    assert np.all(ratio[failed] < 0.45) and np.all(ratio[failed] > 0.03)
    assert np.median(ratio[~failed]) == pytest.approx(1.0, abs=0.03)
    # heteroscedastic: the CV varies with the setpoint
    cv = world.noise_sd(table) / world.mean_yield(table)
    assert cv.max() > 1.5 * cv.min()
    # failures can be switched off for new batches
    y = world.sample_yield(table, failures=False, random_seed=0)
    assert np.all(y / world.mean_yield(table) > 0.5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_far_optimum_recipe_loses_at_least_20_percent(seed):
    world = make_world("far_optimum", random_seed=seed)
    for _, group in world.groups.iterrows():
        opt = world.optimum(group)
        recipe = world.recipe(group)
        kept = world.mean_yield(recipe.to_numpy()[None], group)[0]
        assert kept <= 0.8 * opt["yield"]


def test_recipe_and_group_errors():
    world = make_world("scale_shift", random_seed=0)
    recipe = world.recipe({"scale": "2000L", "site": "B"})
    assert list(recipe.index) == FACTORS and recipe.name == "2000L/B"
    with pytest.raises(ValueError, match="unknown scale"):
        world.mean_yield(np.array([[20.0, 36.0, 7.0, 40.0]]), {"scale": "5L", "site": "A"})
    with pytest.raises(ValueError, match="no 'site'"):
        world.mean_yield(np.array([[20.0, 36.0, 7.0, 40.0]]), {"scale": "2L"})
    with pytest.raises(ValueError, match="missing factor"):
        world.mean_yield(pd.DataFrame({"ph": [7.0], "scale": ["2L"], "site": ["A"]}))
    with pytest.raises(ValueError, match="must set 'site'"):
        world.optimum({"scale": "2L"})


def test_scale_shift_world_moves_mixing_and_do_optima():
    world = make_world("scale_shift", random_seed=0)
    small = world.optimum({"scale": "2L", "site": "A"})
    large = world.optimum({"scale": "2000L", "site": "A"})
    assert large["mixing_time"] > 3 * small["mixing_time"]
    assert large["dissolved_oxygen"] > small["dissolved_oxygen"] + 20


def test_ode_world_gives_finite_yields_on_thousands_of_setpoints(random_points):
    world = make_world("fed_batch_ode", random_seed=0)
    mu = world.mean_yield(random_points[:4000], {"scale": "200L", "site": "B"})
    assert np.all(np.isfinite(mu)) and np.all(mu > 0)
