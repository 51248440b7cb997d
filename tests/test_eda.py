import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from bayesbio import eda
from bayesbio.simulate import simulate_batches
from bayesbio.space import ProcessSpace

SPACE = ProcessSpace.default()
FACTORS = list(SPACE.factor_names)


@pytest.fixture(scope="module")
def table():
    return simulate_batches(300, random_seed=2).table


def test_summarize_overall_matches_pandas(table):
    raw = table.copy()
    raw.loc[[0, 5], "ph"] = np.nan
    out = eda.summarize(raw)
    assert list(out["column"]) == [*FACTORS, "yield"]
    row = out.set_index("column").loc["ph"]
    assert row["count"] == len(raw) - 2 and row["missing"] == 2
    assert row["median"] == pytest.approx(raw["ph"].median())
    assert row["min"] == pytest.approx(raw["ph"].min())
    assert row["max"] == pytest.approx(raw["ph"].max())
    assert row["unit"] == "pH"
    assert out.set_index("column").loc["temperature", "unit"] == "degC"


def test_summarize_per_group_counts_each_level(table):
    out = eda.summarize(table, ["scale", "site"])
    assert {"scale", "site", "column", "count", "missing", "min", "median", "max"} <= set(out)
    yields = out[out["column"] == "yield"]
    sizes = table.groupby(["scale", "site"]).size()
    got = yields.set_index(["scale", "site"])["count"]
    assert got.sort_index().tolist() == sizes.sort_index().tolist()
    med = table.groupby("scale")["temperature"].median()
    by_scale = eda.summarize(table, "scale")
    by_scale = by_scale[by_scale["column"] == "temperature"].set_index("scale")["median"]
    pd.testing.assert_series_equal(by_scale.sort_index(), med.sort_index(), check_names=False)


def test_summarize_accepts_raw_values_beyond_limits(table):
    raw = table.copy()
    raw.loc[3, "ph"] = 70.0
    out = eda.summarize(raw).set_index("column")
    assert out.loc["ph", "max"] == 70.0


def test_eda_runs_on_raw_dirty_table(tmp_path):
    raw = simulate_batches(200, defects=True, random_seed=4).table
    raw.loc[0, "site"] = None
    summary, figures = eda.run_eda(raw, tmp_path)
    assert len(figures) == 4
    assert "(missing)" in set(summary["site"])
    missing = summary[summary["column"].isin(FACTORS)]["missing"].sum()
    assert missing == raw[FACTORS].isna().sum().sum()
    assert (tmp_path / "pairs.png").exists()


def test_smooth_recovers_curve_despite_outliers():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 10, 400)
    truth = lambda v: 5 - 0.2 * (v - 5) ** 2  # noqa: E731
    y = truth(x) + rng.normal(0, 0.2, len(x))
    y[:20] += 30  # gross outliers must not pull the smoother
    grid, fitted = eda.smooth(x, y, frac=0.3)
    assert len(grid) == 50
    assert np.max(np.abs(fitted - truth(grid))) < 0.35


def test_smooth_is_statsmodels_lowess_on_a_grid():
    from statsmodels.nonparametric.smoothers_lowess import lowess

    rng = np.random.default_rng(2)
    x = rng.uniform(20, 40, 200)
    y = np.sin(x / 3) + rng.normal(0, 0.1, len(x))
    grid, fitted = eda.smooth(x, y, frac=0.4, iterations=2, n_points=25)
    expected = lowess(y, x, frac=0.4, it=2, xvals=grid)
    assert grid[0] == x.min() and grid[-1] == x.max() and len(grid) == 25
    assert fitted == pytest.approx(expected)
    # a small sample still gives a finite curve (at least 4 points in each local fit)
    g, f = eda.smooth(x[:12], y[:12], frac=0.1)
    assert np.isfinite(f).all() and len(g) == 50


def test_smooth_of_a_small_noisy_group_stays_within_its_data():
    # ten batches of one reactor: a local line through 4-5 of them swung to twice the best
    rng = np.random.default_rng(5)
    x = np.sort(rng.uniform(6.6, 7.3, 10))
    y = 1000 + 150 * rng.standard_normal(10)
    y[[1, 2]] = [1220.0, 600.0]
    for frac in (0.2, 0.5):
        _, fitted = eda.smooth(x, y, frac=frac)
        assert y.min() <= fitted.min() and fitted.max() <= y.max()


def test_smooth_edge_cases():
    grid, fitted = eda.smooth([1.0, 1.0, 2.0], [1.0, 2.0, 3.0])
    assert grid.size == 0 and fitted.size == 0
    with pytest.raises(ValueError, match="frac must be in"):
        eda.smooth([1, 2, 3], [1, 2, 3], frac=0)
    with pytest.raises(ValueError, match="same length"):
        eda.smooth([1, 2, 3], [1, 2])
    # linear data with NaN: exact line
    x = np.array([0.0, 1, 2, 3, 4, 5, np.nan])
    g, f = eda.smooth(x, 2 * x + 1, n_points=6)
    assert f == pytest.approx(2 * g + 1)


def test_plot_distributions_labels_units(table):
    fig = eda.plot_distributions(table, group="scale")
    assert isinstance(fig, Figure)
    labels = [ax.get_xlabel() for ax in fig.axes if ax.get_visible()]
    assert labels == [SPACE.axis_label(c) for c in (*FACTORS, "yield")]
    assert "Temperature [°C]" in labels


def test_plot_correlation_draws_on_given_axes_and_blanks_constant_column(table):
    _, ax = plt.subplots()
    out = eda.plot_correlation(table.assign(ph=7.0), ax=ax)
    assert out is ax
    values = np.ma.filled(ax.images[0].get_array(), np.nan)
    cols = [*FACTORS, "yield"]
    assert np.isnan(values[cols.index("ph")]).all()
    assert np.diag(values)[cols.index("temperature")] == pytest.approx(1.0)
    assert ax.get_xticklabels()[1].get_text() == "Temperature [°C]"


def test_plot_correlation_rejects_unknown_method(table):
    with pytest.raises(ValueError, match="method='cosine'"):
        eda.plot_correlation(table, method="cosine")


def test_plot_yield_vs_parameter_one_smoother_per_group(table):
    _, ax = plt.subplots()
    out = eda.plot_yield_vs_parameter(table, "temperature", group="scale", ax=ax)
    assert isinstance(out, Axes)
    assert out is ax
    assert ax.get_xlabel() == "Temperature [°C]"
    assert ax.get_ylabel() == "Yield (titer) [g/L]"
    n_levels = table["scale"].nunique()
    assert len(ax.collections) == n_levels and len(ax.lines) == n_levels
    # the legend names the dots (one entry per group) and the smoother lines
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [*sorted(table["scale"].unique()), "LOWESS smoother per group"]
    assert ax.get_legend().get_title().get_text() == "scale"


def test_flagged_outliers_are_crosses_left_out_of_the_smoother(table):
    # a small group (12 batches), where the smoother's robustness iterations do not suffice
    sub = table[table["scale"] == table["scale"].iloc[0]].iloc[:12].copy()
    low = sub.index[:2]
    sub.loc[low, "yield"] = 0.1 * sub["yield"].median()  # two contaminated batches
    ids = sub.loc[low, "batch_id"].tolist()
    _, ax = plt.subplots()
    eda.plot_yield_vs_parameter(sub, "temperature", group=None, ax=ax, outliers=[*ids, "nope"])
    kept = sub.drop(index=low)
    _, gy = eda.smooth(
        kept["temperature"].to_numpy(), kept["yield"].to_numpy(), frac=0.5, random_seed=0
    )
    np.testing.assert_allclose(ax.lines[0].get_ydata(), gy)
    crosses = ax.collections[1].get_offsets()
    np.testing.assert_allclose(np.sort(crosses[:, 1]), np.sort(sub.loc[low, "yield"]))
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[-1] == "flagged outlier (not smoothed)"
    # without ids the two batches pull the smoother down
    _, ax2 = plt.subplots()
    eda.plot_yield_vs_parameter(sub, "temperature", group=None, ax=ax2)
    assert ax2.lines[0].get_ydata().min() < gy.min()
    plt.close("all")


def test_plot_yield_vs_parameters_and_pairs(table):
    fig = eda.plot_yield_vs_parameters(table)
    assert [ax.get_xlabel() for ax in fig.axes] == [SPACE.axis_label(p) for p in FACTORS]
    pairs = eda.plot_pairs(table, columns=["temperature", "ph", "yield"], group="site")
    assert len(pairs.axes) == 9
    assert pairs.axes[6].get_xlabel() == "Temperature [°C]"


def test_run_eda_saves_pngs_and_summary(table, tmp_path):
    summary, figures = eda.run_eda(table, tmp_path / "eda")
    assert set(figures) == {"distributions", "correlation", "yield_vs_parameters", "pairs"}
    for name in figures:
        path = tmp_path / "eda" / f"{name}.png"
        assert path.exists() and path.stat().st_size > 1000, name
    saved = pd.read_csv(tmp_path / "eda" / "summary.csv")
    assert len(saved) == len(summary)
    assert {"scale", "site"} <= set(summary.columns)


def test_run_eda_without_response_or_output(table):
    result = eda.run_eda(table.drop(columns=["yield", "scale"]))
    assert "yield_vs_parameters" not in result.figures
    assert isinstance(result, eda.EDAResult) and len(result) == 2
    assert set(result.summary["column"]) == set(FACTORS)


def test_eda_reads_capitalised_columns_of_the_default_space(table):
    raw = table.rename(columns={"scale": "Scale", "ph": "pH", "batch_id": "Batch ID"})
    out = eda.summarize(raw, "scale")
    assert "ph" in set(out["column"]) and "scale" in out.columns


def test_eda_follows_a_two_factor_space(space_k2, table_k2, tmp_path):
    summary, figures = eda.run_eda(table_k2, tmp_path, space=space_k2)
    assert list(summary["column"].unique()) == ["temperature", "agitation", "titer"]
    assert dict(zip(summary["column"], summary["unit"], strict=False))["agitation"] == "rpm"
    assert "site" in summary.columns  # the only group is kept
    panels = figures["yield_vs_parameters"].axes
    assert [ax.get_xlabel() for ax in panels] == ["Temperature [°C]", "Agitation [rpm]"]
    assert panels[0].get_ylabel() == "Titer [g/L]"
    # no `scale` in this space: the default colour group falls back to its outermost group
    assert panels[0].get_legend().get_title().get_text() == "site"
    assert len(figures["pairs"].axes) == 9
    assert (tmp_path / "yield_vs_parameters.png").exists()
    with pytest.raises(ValueError, match=r"parameter='ph'; expected one of \['temperature'"):
        eda.plot_yield_vs_parameter(table_k2, "ph", space=space_k2)


def test_eda_with_a_single_factor(space_k2, table_k2):
    space = space_k2.with_factors(["agitation"])
    fig = eda.plot_yield_vs_parameters(table_k2, space=space)
    assert [ax.get_xlabel() for ax in fig.axes] == ["Agitation [rpm]"]
    ax = eda.plot_correlation(table_k2, space=space)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Agitation [rpm]", "Titer [g/L]"]
    dist = eda.plot_distributions(table_k2, space=space, group="site")
    assert len([a for a in dist.axes if a.get_visible()]) == 2


@pytest.mark.slow
def test_example_01_runs_and_writes_figures(tmp_path, monkeypatch):
    import runpy
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "examples" / "01_simulate_and_clean.py"
    monkeypatch.setenv("BAYESBIO_OUTPUT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(script), run_name="__main__")
    out = tmp_path / "01_simulate_and_clean"
    assert {"distributions.png", "pairs.png", "audit_log.csv"} <= {p.name for p in out.iterdir()}


def test_run_eda_passes_flagged_batches_to_the_yield_panels(table):
    shifted = table.set_index(table.index + 100)  # any index: ids are matched, not positions
    ids = shifted["batch_id"].iloc[[0, 3]].tolist()
    result = eda.run_eda(shifted, outliers=ids)
    ax = result.figures["yield_vs_parameters"].axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[-1] == "flagged outlier (not smoothed)"
    crosses = [c for c in ax.collections if c.get_offsets().shape[0] and c.get_sizes()[0] == 28]
    assert sum(len(c.get_offsets()) for c in crosses) == 2
    plt.close("all")
