import warnings

import numpy as np
import pandas as pd
import pytest
from test_recommend import ConjugateQuadratic, toy_space

from bayesbio.recommend import BoundWarning, Campaign

SPACE1 = toy_space(1)  # speed 100-500 rpm, titer in mg/L, groups ("site",), batch id "run"
VERTEX = 0.7  # true optimum at 380 rpm


def truth(speed):
    u = (np.asarray(speed, float) - 100.0) / 400.0
    return 50.0 - 40.0 * (u - VERTEX) ** 2


def start_table(n=8, seed=0):
    """Historical batches near the recipe, 180 rpm (u = 0.2): 10 g/L below the optimum."""
    rng = np.random.default_rng(seed)
    speed = np.clip(180.0 + 20.0 * rng.standard_normal(n), 100.0, 500.0)
    return pd.DataFrame(
        {
            "run": [f"H{i:02d}" for i in range(n)],
            "site": "A",
            "speed": speed,
            "titer": truth(speed) + 0.5 * rng.standard_normal(n),
        }
    )


def run_batches(proposals, round_, seed):
    rng = np.random.default_rng([seed, round_])
    out = proposals[["site", "speed"]].copy()
    out.insert(0, "run", [f"R{round_}-{i}" for i in range(len(out))])
    out["titer"] = truth(out["speed"]) + 0.5 * rng.standard_normal(len(out))
    return out


def factory():
    return ConjugateQuadratic(SPACE1)


# a quadratic fitted to 8 batches whose noise all fell one way is too sure (the add warns)
@pytest.mark.filterwarnings("ignore:Campaign.add.*predictive intervals:UserWarning")
def test_campaign_converges_to_the_optimum_of_a_1d_function_within_5_rounds():
    camp = Campaign(SPACE1, start_table(), model=factory, random_seed=3)
    first = camp.best(objective="mean", n_draws=400)
    assert first.setpoint["speed"] < 260.0  # the start data only show the slope near 180 rpm
    recipe_yield = truth(camp.recipe["speed"])
    proposed = []
    for r in range(5):
        batch = camp.recommend(4, n_draws=400)
        assert len(batch) == 4 and batch["speed"].nunique() == 4
        assert (batch["p_safe"] >= 0.9).all()
        proposed.extend(batch["speed"])
        camp.add(run_batches(batch, r, seed=7))
    assert camp.round == 5 and len(camp.table) == 8 + 20
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundWarning)
        best = camp.best(objective="mean", n_draws=400)
    assert best.decision == "improve"
    assert abs((best.setpoint["speed"] - 100.0) / 400.0 - VERTEX) < 0.05
    regret = truth(100.0 + 400.0 * VERTEX) - truth(best.setpoint["speed"])
    assert regret < 0.01 * 50.0
    # safety in truth: no experiment lost more than 20 % of the recipe's yield
    assert (truth(np.array(proposed)) >= 0.8 * recipe_yield).all()


def test_same_seed_same_proposals_and_other_seed_other_proposals():
    a = Campaign(SPACE1, start_table(), model=factory, random_seed=11).recommend(3, n_draws=300)
    b = Campaign(SPACE1, start_table(), model=factory, random_seed=11).recommend(3, n_draws=300)
    c = Campaign(SPACE1, start_table(), model=factory, random_seed=12).recommend(3, n_draws=300)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["speed"].to_numpy(), c["speed"].to_numpy())


def test_safety_rule_keeps_proposals_away_from_a_known_cliff():
    # strict rule: no batch may risk losing more than 2 % of the recipe's yield
    camp = Campaign(SPACE1, start_table(12), model=factory, delta=0.02, random_seed=1)
    batch = camp.recommend(4, n_draws=400)
    assert (batch["p_safe"] >= 0.9).all()
    loose = Campaign(SPACE1, start_table(12), model=factory, delta=0.5, random_seed=1)
    assert loose.recommend(4, n_draws=400).attrs["n_safe"] > batch.attrs["n_safe"]


def test_trust_region_keeps_proposals_within_the_groups_support():
    from bayesbio.recommend.context import build_context

    # a loose safety rule: only the trust region keeps the batches near the data
    kept = Campaign(SPACE1, start_table(12), model=factory, delta=0.9, random_seed=2)
    free = Campaign(
        SPACE1, start_table(12), model=factory, delta=0.9, trust_region=False, random_seed=2
    )
    ctx = build_context(kept._fitted(), None, "auto", None)
    limit = ctx.res.max_distance
    near = kept.recommend(4, n_draws=300)
    far = free.recommend(4, n_draws=300)
    points = near[["speed"]].to_numpy(dtype=float)
    assert (ctx.support.guard_distance(points, "group") <= limit + 1e-9).all()
    assert (ctx.support.guard_distance(far[["speed"]].to_numpy(float), "group") > limit).any()
    assert far.attrs["n_safe"] > near.attrs["n_safe"]


# a quadratic fitted to 8 batches whose noise all fell one way is too sure (the add warns)
@pytest.mark.filterwarnings("ignore:Campaign.add.*predictive intervals:UserWarning")
def test_campaign_save_load_round_trip(tmp_path):
    camp = Campaign(SPACE1, start_table(), model=factory, random_seed=5, delta=0.15)
    camp.add(run_batches(camp.recommend(2, n_draws=200), 0, seed=1))
    camp.save(tmp_path / "c")
    assert not (tmp_path / "c" / "model.nc").exists()  # a factory model is refitted on load
    with pytest.raises(ValueError, match="model factory"):
        Campaign.load(tmp_path / "c")
    back = Campaign.load(tmp_path / "c", model=factory)
    assert back.round == 1 and back.delta == 0.15 and back.recipe == camp.recipe
    assert back.trust_region is True and back.transfer_risk is True
    assert back.history == camp.history
    pd.testing.assert_frame_equal(back.table, camp.table, check_dtype=False)
    pd.testing.assert_frame_equal(
        back.recommend(3, n_draws=200), camp.recommend(3, n_draws=200), check_dtype=False
    )


def test_campaign_rejects_bad_input():
    with pytest.raises(ValueError, match="delta"):
        Campaign(SPACE1, start_table(), model=factory, delta=1.5)
    camp = Campaign(SPACE1, start_table(), model=factory, random_seed=0)
    with pytest.raises(ValueError, match="repeats batch ids"):
        camp.add(start_table().head(2))
    with pytest.raises(ValueError, match="batch_size"):
        camp.recommend(0)


@pytest.mark.slow
def test_campaign_with_bayesian_model_round_trips_through_netcdf(tmp_path):
    from bayesbio.simulate import simulate_batches

    table = simulate_batches(30, random_seed=4).table
    params = {"structures": ("quadratic",), "draws": 200, "tune": 200, "chains": 2}
    group = {"scale": "200L", "site": "A"}
    camp = Campaign(None, table, model_params={**params, "random_seed": 1}, group=group)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")  # short chains: convergence warnings are expected
        batch = camp.recommend(4, n_draws=300)
    assert len(batch) == 4 and (batch["scale"] == "200L").all()
    camp.save(tmp_path / "c")
    assert (tmp_path / "c" / "model.nc").exists()
    back = Campaign.load(tmp_path / "c")
    pd.testing.assert_frame_equal(back.recommend(4, n_draws=300), camp.recommend(4, n_draws=300))


@pytest.mark.slow
def test_cli_next_writes_proposals_and_the_campaign(tmp_path):
    from typer.testing import CliRunner

    from bayesbio.cli import app
    from bayesbio.simulate import simulate_batches

    data = tmp_path / "batches.csv"
    simulate_batches(30, random_seed=4).table.to_csv(data, index=False)
    args = ["next", "--data", str(data), "--batches", "2", "-g", "scale=200L", "-g", "site=A"]
    args += ["--draws", "100", "--tune", "100", "--chains", "2", "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    text = result.output
    assert "Round 1: 2 batch(es) to run for scale 200L, site A" in text
    assert "Recipe (the reference): Mixing time" in text and "Safety rule: P(yield >= 0.8" in text
    assert "air sat.." not in text  # the unit's own full stop ends the sentence
    assert "P(safe)" in text and " draw " not in text
    assert "fill in the 'yield' column of" in text and "next_results.csv" in text
    # where a batch lands, what to adopt now, and whether the fit passed its checks
    assert "a batch, 90 % [g/L]" in text and "Best so far" in text
    assert "Sampling checks passed (max R-hat" in text or "Sampling checks FAILED (" in text
    proposals = pd.read_csv(tmp_path / "o" / "next_batches.csv")
    assert len(proposals) == 2 and (proposals["scale"] == "200L").all()
    assert (proposals["p_safe"] >= 0.9).all()
    back = Campaign.load(tmp_path / "o" / "campaign")
    assert back.group == {"scale": "200L", "site": "A"} and back.model_ is not None
    # the next round: the results sheet filled in, added to the same campaign
    ran = pd.read_csv(tmp_path / "o" / "next_results.csv")
    assert list(ran["batch_id"]) == ["R1-1", "R1-2"] and ran["yield"].isna().all()
    assert (ran["scale"] == "200L").all() and ran["campaign"].notna().all()
    ran["yield"] = 5.0
    ran.to_csv(tmp_path / "round1.csv", index=False)
    more = ["next", "--campaign", str(tmp_path / "o" / "campaign")]
    more += ["--results", str(tmp_path / "round1.csv"), "--out", str(tmp_path)]
    result = CliRunner().invoke(app, more)
    assert result.exit_code == 0, result.output
    assert "results of round 1 added: 2 batch(es), 32 in all" in result.output
    again = Campaign.load(tmp_path / "campaign")
    assert again.round == 1 and len(again.table) == 32 and again.recipe == back.recipe
    # without --batches the campaign keeps its round size (2, not the default 4)
    assert len(pd.read_csv(tmp_path / "next_batches.csv")) == 2
    assert "Round 2: 2 batch(es) to run" in result.output
    # the remedy for a failed check works on a running campaign: more draws, refitted
    refit = ["next", "--campaign", str(tmp_path / "campaign"), "--draws", "120"]
    refit += ["--tune", "100", "--chains", "2", "--out", str(tmp_path / "r")]
    result = CliRunner().invoke(app, refit)
    assert result.exit_code == 0, result.output
    third = Campaign.load(tmp_path / "r" / "campaign")
    assert third.model_params["draws"] == 120 and third.round == 1
    assert all(d.posterior.sizes["draw"] == 120 for d in third.model_.idata_.values())
    # proposing again in the same round replaces that round's proposals
    assert [h["round"] for h in third.history] == [0, 1]


def test_cli_next_says_how_to_start_or_continue_a_campaign(tmp_path):
    from typer.testing import CliRunner

    from bayesbio.cli import app

    runner = CliRunner()
    neither = runner.invoke(app, ["next"])
    assert neither.exit_code == 2 and "give --data (a new campaign) or --campaign" in neither.output
    lone = runner.invoke(app, ["next", "--data", "x.csv", "--results", "r.csv"])
    assert lone.exit_code == 2 and "give it with --campaign" in lone.output
    dropped = runner.invoke(app, ["next", "--data", "x.csv", "--drop", "B1"])
    assert dropped.exit_code == 2 and "--drop removes batches of a running campaign" in (
        dropped.output
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = runner.invoke(app, ["next", "--campaign", str(empty)])
    assert missing.exit_code == 2 and "no campaign.json there" in missing.output
    fixed = runner.invoke(app, ["next", "--campaign", str(empty), "-g", "site=A", "--delta", "0.1"])
    assert fixed.exit_code == 2 and "--group, --delta cannot change a running campaign" in (
        fixed.output
    )
    seeded = runner.invoke(app, ["next", "--campaign", str(empty), "--seed", "7"])
    assert seeded.exit_code == 2 and "--seed cannot change a running campaign" in seeded.output


def test_campaign_seed_seeds_the_default_model_per_round():
    from bayesbio.simulate import simulate_batches

    table = simulate_batches(30, random_seed=4).table
    group = {"scale": "200L", "site": "A"}
    camp = Campaign(None, table, model_params={"draws": 50}, group=group, random_seed=3)
    first = camp._new_model()
    assert first.random_seed == 3 and first.draws == 50
    camp.round = 1
    assert camp._new_model().random_seed == 3 + 7_919
    own = Campaign(None, table, model_params={"random_seed": 9}, group=group, random_seed=3)
    assert own._new_model().random_seed == 9
    assert Campaign(None, table, group=group)._new_model().random_seed is None


def test_a_group_column_the_campaign_does_not_name_is_reported():
    """The campaign names the value it took for a group column left out of ``group``."""
    import dataclasses

    space = dataclasses.replace(SPACE1, groups=("site", "line"))
    table = start_table().assign(line=["L1"] * 6 + ["L2"] * 2)
    camp = Campaign(
        space,
        table,
        model=lambda: ConjugateQuadratic(space),
        group={"site": "A"},
        random_seed=1,
    )
    with pytest.warns(UserWarning, match="'line' not given: the model's effect of 'L1'"):
        camp.fit()
    proposals = camp.recommend(batch_size=2)
    assert any("'line'" in note for note in proposals.attrs["notes"])
    assert (proposals["line"] == "L1").all()


def test_a_mistyped_group_is_named_at_construction_before_any_fit():
    calls = []

    def counting_factory():
        calls.append(1)
        return factory()

    with pytest.raises(ValueError, match=r"group\['site'\] = 'C' is not a label .*\['A'\]") as err:
        Campaign(SPACE1, start_table(), model=counting_factory, group={"site": "C"})
    assert "kind=" not in str(err.value) and "A campaign starts from batches" in str(err.value)
    with pytest.raises(ValueError, match=r"unknown column\(s\) \['scale'\]"):
        Campaign(SPACE1, start_table(), model=counting_factory, group={"scale": "2L"})
    assert not calls  # nothing was fitted
    # a label in another case is read as the table's
    assert Campaign(SPACE1, start_table(), model=factory, group={"site": " a"}).group == {
        "site": "A"
    }


# a quadratic fitted to 8 batches whose noise all fell one way is too sure (the add warns)
@pytest.mark.filterwarnings("ignore:Campaign.add.*predictive intervals:UserWarning")
def test_results_written_otherwise_join_the_campaigns_group():
    camp = Campaign(SPACE1, start_table(), model=factory, random_seed=5)
    rows = run_batches(camp.recommend(2, n_draws=200), 0, seed=1)
    rows["site"] = [" a", "A"]  # the results file's own spelling
    with pytest.warns(UserWarning, match=r"'site' label ' a' read as 'A', as in the campaign"):
        camp.add(rows)
    assert set(camp.table["site"]) == {"A"}
    other = run_batches(camp.recommend(1, n_draws=200), 1, seed=2).assign(site="B")
    with pytest.warns(UserWarning, match=r"'site' label 'B' is not in the campaign's table"):
        camp.add(other)


def test_next_says_which_proposals_repeat_a_past_batch():
    from types import SimpleNamespace

    from bayesbio.cli import _repeated_batches
    from bayesbio.space import ProcessSpace

    space = ProcessSpace.default()
    names = list(space.factor_names)
    past = pd.DataFrame([[30.0, 36.5, 7.0, 40.0], [35.0, 36.0, 7.1, 45.0]], columns=names).assign(
        batch_id=["B1", "B2"]
    )
    frame = pd.DataFrame([[35.0, 36.0, 7.1, 45.0], [33.0, 36.2, 7.05, 42.0]], columns=names)
    camp = SimpleNamespace(space=space, table=past)
    assert _repeated_batches(camp, frame) == {0: "B2"}
    assert _repeated_batches(camp, frame.iloc[1:]) == {}


def test_the_safety_rule_of_a_response_to_minimise_is_said_as_computed():
    space = toy_space(1, direction="minimise")  # impurity in mg/L, lower is better
    rng = np.random.default_rng(2)
    speed = np.clip(180.0 + 20.0 * rng.standard_normal(8), 100.0, 500.0)
    table = pd.DataFrame(
        {
            "run": [f"H{i:02d}" for i in range(8)],
            "site": "A",
            "speed": speed,
            "impurity": 20.0 + 40.0 * ((speed - 100.0) / 400.0 - 0.3) ** 2 + rng.normal(0, 0.3, 8),
        }
    )
    camp = Campaign(
        space, table, model=lambda: ConjugateQuadratic(space), group={"site": "A"}, random_seed=1
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundWarning)
        proposals = camp.recommend(batch_size=2)
    assert proposals.attrs["rule"] == "P(impurity <= 1.2 x recipe) >= 0.9"
    assert (proposals["p_safe"] >= 0.9).all()


def test_cli_next_names_proposals_beyond_the_values_the_group_has_run():
    from types import SimpleNamespace

    from bayesbio.cli import _beyond_runs

    table = start_table(8).assign(site=["A"] * 6 + ["B"] * 2)
    table.loc[6:, "speed"] = 480.0  # site B ran fast; site A's batches are near 180 rpm
    camp = SimpleNamespace(space=SPACE1, table=table, group={"site": "A"})
    top = float(table.loc[table["site"] == "A", "speed"].max())
    frame = pd.DataFrame({"site": ["A", "A"], "speed": [top + 2.0, top + 60.0]})
    said = _beyond_runs(camp, frame)
    assert len(said) == 1 and said[0].startswith("batch 2: Speed ")
    assert f"(highest run {top:.4g} rpm)" in said[0]
    low = pd.DataFrame({"site": ["A"], "speed": [100.0]})
    assert "lowest run" in _beyond_runs(camp, low)[0]


SPACE2 = toy_space(2)  # speed 100-500 rpm, feed; titer in mg/L


def truth2(frame):
    u = (frame[list(SPACE2.factor_names)].to_numpy(float) - SPACE2.lower) / (
        SPACE2.upper - SPACE2.lower
    )
    return 50.0 - 30.0 * ((u - [0.6, 0.5]) ** 2).sum(axis=1)


def start_table2(n=10, seed=0, sd=0.04, centre=(0.3, 0.4)):
    """Batches scattered around a recipe at ``centre`` (unit scale); the optimum is (0.6, 0.5)."""
    rng = np.random.default_rng(seed)
    u = np.clip(np.asarray(centre) + sd * rng.standard_normal((n, 2)), 0.0, 1.0)
    table = pd.DataFrame(
        SPACE2.lower + u * (SPACE2.upper - SPACE2.lower), columns=SPACE2.factor_names
    )
    table.insert(0, "site", "A")
    table.insert(0, "run", [f"H{i:02d}" for i in range(n)])
    table["titer"] = truth2(table) + 1.0 * rng.standard_normal(n)
    return table


def _unit_gap(points, table):
    width = SPACE2.upper - SPACE2.lower
    a = (points[list(SPACE2.factor_names)].to_numpy(float) - SPACE2.lower) / width
    b = (table[list(SPACE2.factor_names)].to_numpy(float) - SPACE2.lower) / width
    return np.abs(a[:, None, :] - b[None, :, :]).max(axis=2).min(axis=1)


def test_proposals_are_new_setpoints_while_new_safe_ones_exist():
    table = start_table2()
    camp = Campaign(SPACE2, table, model=lambda: ConjugateQuadratic(SPACE2), random_seed=4)
    for r in range(3):
        batch = camp.recommend(4, n_draws=300)
        assert batch.attrs["n_safe"] >= 4
        # none repeats a batch the group has run (the campaign's own earlier ones included)
        assert (_unit_gap(batch, camp.table) >= 0.02).all(), r
        rows = batch[["site", *SPACE2.factor_names]].copy()
        rows.insert(0, "run", [f"R{r}-{i}" for i in range(4)])
        rows["titer"] = truth2(rows)
        camp.add(rows)


def test_proposals_of_one_round_are_not_spent_on_nearly_one_setpoint():
    camp = Campaign(SPACE2, start_table2(), model=lambda: ConjugateQuadratic(SPACE2), random_seed=4)
    batch = camp.recommend(4, n_draws=300)
    u = (batch[list(SPACE2.factor_names)].to_numpy() - SPACE2.lower) / (SPACE2.upper - SPACE2.lower)
    gaps = np.abs(u[:, None, :] - u[None, :, :]).max(axis=2)
    np.fill_diagonal(gaps, np.inf)
    assert gaps.min() >= 0.1  # 10 % of a range apart in at least one factor


def test_when_only_the_recipe_is_safe_the_campaign_takes_small_steps_from_it():
    # a rule no batch can meet (P(lose at most 0.1 % of the recipe's yield) >= 0.999): the
    # recipe itself has P(safe) about 0.55, so small steps that are nearly as safe are
    # proposed instead of four replicates of the recipe
    table = start_table2(sd=0.02)
    camp = Campaign(
        SPACE2,
        table,
        model=lambda: ConjugateQuadratic(SPACE2),
        delta=0.001,
        safety_prob=0.999,
        random_seed=5,
    )
    batch = camp.recommend(4, n_draws=300)
    step = _unit_gap(batch, pd.DataFrame([camp.recipe]))
    assert (step <= 0.03 + 1e-9).all()  # small steps around the recipe ...
    assert (step > 0.0).sum() >= 3  # ... not replicates of it
    assert batch[list(SPACE2.factor_names)].round(9).drop_duplicates().shape[0] == 4
    (p_recipe,) = batch.loc[step == 0.0, "p_safe"]
    assert p_recipe < 0.9 and (batch["p_safe"] >= p_recipe - 0.02).all()


def test_add_names_results_outside_the_operating_range_and_their_predictions():
    camp = Campaign(SPACE1, start_table(), model=factory, random_seed=3)
    batch = camp.recommend(2, n_draws=300)
    assert (batch["q05"] < batch["expected_yield"]).all()
    assert (batch["expected_yield"] < batch["q95"]).all()
    ran = run_batches(batch, 1, seed=3)
    ran.loc[0, "titer"] = float(batch["q05"].iloc[0]) - 5.0  # far below what was predicted
    extra = ran.iloc[:1].assign(run="X1", speed=520.0)  # beyond the 100-500 rpm range
    with pytest.warns(UserWarning) as caught:
        camp.add(pd.concat([ran, extra], ignore_index=True))
    text = " ".join(str(w.message) for w in caught)
    assert "'speed' outside its operating range 100-500 rpm (X1 at 520)" in text
    # the two results matched to their proposals (the batch at 520 rpm was not proposed)
    assert "of 2 result(s) of the proposed batches fell outside their 90 % predictive" in text
    assert f"{ran.loc[0, 'run']} {ran.loc[0, 'titer']:.4g} (predicted " in text


@pytest.mark.filterwarnings("ignore:Campaign.add.*predictive intervals:UserWarning")
def test_a_wrong_entry_can_be_dropped_from_a_campaign():
    camp = Campaign(SPACE1, start_table(), model=factory, random_seed=3)
    batch = camp.recommend(2, n_draws=300)
    ran = run_batches(batch, 1, seed=3)
    camp.add(ran)
    n = len(camp.table)
    with pytest.raises(ValueError, match=r"\['nope'\] not in the campaign's column 'run'"):
        camp.drop(["nope"])
    camp.drop([ran["run"].iloc[0]], reason="typed 7.9 for 7.09")
    assert len(camp.table) == n - 1 and ran["run"].iloc[0] not in set(camp.table["run"])
    assert camp.history[-1] == {"round": 1, "dropped": [ran["run"].iloc[0]], "reason": (
        "typed 7.9 for 7.09"
    )}  # fmt: skip
    # the next proposals (made twice: replaced) and their results pair up in the history
    camp.recommend(2, n_draws=300)
    camp.add(run_batches(camp.recommend(2, n_draws=300), 2, seed=3))
    assert [sorted(h) for h in camp.history[-2:]] == [
        ["dropped", "reason", "round"],
        ["added", "proposed", "round"],
    ]


@pytest.mark.filterwarnings("ignore:Campaign.add.*predictive intervals:UserWarning")
def test_the_results_template_goes_back_into_the_campaign_once_filled_in():
    camp = Campaign(SPACE1, start_table(), model=factory, random_seed=3)
    batch = camp.recommend(2, n_draws=300)
    sheet = camp.results_template(batch)
    assert list(sheet.columns) == ["run", "site", "speed", "titer"]
    assert list(sheet["run"]) == ["R1-1", "R1-2"] and sheet["titer"].isna().all()
    assert (sheet["site"] == "A").all()
    assert np.allclose(sheet["speed"], batch["speed"], rtol=1e-3)  # 4 significant digits
    # an unfilled row is named, not dropped in silence or called a cleaning problem
    with pytest.raises(ValueError, match=r"'titer' is empty for 1 batch\(es\) \(R1-2\)"):
        camp.add(sheet.assign(titer=[40.0, np.nan]))
    camp.add(sheet.assign(titer=truth(sheet["speed"])))
    assert set(camp.table["run"]) >= {"R1-1", "R1-2"}
    # the next sheet's ids are new even when a past batch already took the plain one
    camp.add(run_batches(camp.recommend(2, n_draws=300), 2, seed=3).assign(run=["R3-1", "X"]))
    ids = camp.results_template(camp.recommend(2, n_draws=300))["run"]
    assert list(ids) == ["R3-1b", "R3-2"]


class _DiscountsFirstBatch(ConjugateQuadratic):
    """The conjugate model with a Student-t-like weight: the first batch an outlier."""

    def fit(self, X, y=None):
        super().fit(X, y)
        self.batch_weight_ = pd.Series(np.where(np.arange(len(X)) == 0, 0.05, 1.0), X.index)
        return self


def test_next_prints_the_notes_of_the_proposals_such_as_discounted_batches(tmp_path):
    from bayesbio.cli import _next_text

    camp = Campaign(SPACE1, start_table(), model=lambda: _DiscountsFirstBatch(SPACE1))
    frame = camp.recommend(2, n_draws=200)
    assert any("weigh little in the fit (outlying or failed: H00)" in n
               for n in frame.attrs["notes"])  # fmt: skip
    text = _next_text(camp, frame, tmp_path)
    assert "Note: 1 batch(es) of the target group weigh little in the fit" in text


def test_no_relaxed_steps_from_a_best_batch_the_rule_calls_unsafe():
    # a rule no batch can meet, as above, in a history that has found a better region than
    # the recipe's: the relaxed bar holds around the recipe only (relaxing it around a best
    # batch the rule calls unsafe sent batches off a ridge, BENCHMARKS 2026-12-08), so every
    # proposal is a small step from the recipe or passes the rule as it stands
    recipe_batches = start_table2(n=8, sd=0.02)
    found = start_table2(n=4, seed=1, sd=0.02, centre=(0.55, 0.5))
    found["run"] = [f"F{i}" for i in range(4)]
    camp = Campaign(
        SPACE2,
        pd.concat([recipe_batches, found], ignore_index=True),
        model=lambda: ConjugateQuadratic(SPACE2),
        recipe=dict(
            zip(
                SPACE2.factor_names,
                SPACE2.lower + [0.3, 0.4] * (SPACE2.upper - SPACE2.lower),
                strict=True,
            )
        ),
        delta=0.001,
        safety_prob=0.999,
        random_seed=5,
    )
    batch = camp.recommend(4, n_draws=300)
    step = _unit_gap(batch, pd.DataFrame([camp.recipe]))
    assert ((step <= 0.03 + 1e-9) | (batch["p_safe"] >= 0.999)).all()
