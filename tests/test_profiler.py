import numpy as np
import pytest
from fakes import Parabola
from matplotlib.figure import Figure

from bayesbio.profiler import plot_profiler, profile


@pytest.fixture
def model(space_k2, table_k2):
    return Parabola(space_k2, table_k2, vertex_sd=0.3)


def test_profile_follows_the_known_surface_through_the_setpoint(model):
    x0 = {"temperature": 29.0, "agitation": 150.0}
    table = profile(model, x0, {"site": "North"}, n_points=13, n_draws=2000, random_seed=3)
    assert set(table["factor"]) == {"temperature", "agitation"}
    temp = table[table["factor"] == "temperature"]
    assert temp["value"].min() == 28.0 and temp["value"].max() == 34.0
    assert 29.0 in temp["value"].to_numpy()
    # the mean curve peaks at the vertex (31 degC) and the band holds the mean
    assert temp.loc[temp["mean"].idxmax(), "value"] == pytest.approx(31.0, abs=0.5)
    assert (table["lower"] <= table["mean"]).all() and (table["mean"] <= table["upper"]).all()
    # the band is widest far from the vertex, where the vertex uncertainty matters most
    width = (temp["upper"] - temp["lower"]).to_numpy()
    assert width[0] > 3 * width[np.argmin(np.abs(temp["value"].to_numpy() - 31.0))]
    # every panel passes through the same point: the setpoint
    at = table[table["at_setpoint"]]
    assert len(at) == 2 and np.ptp(at["mean"].to_numpy()) < 1e-12
    assert table.attrs["group"] == {"site": "North"} and table.attrs["units"] == "g/L"


def test_plot_profiler_has_one_panel_per_factor_with_units_and_group(model, space_k2):
    fig = plot_profiler(
        model,
        {"temperature": 30.5, "agitation": 250.0},
        {"site": "South"},
        recipe={"temperature": 31.0, "agitation": 200.0},
        n_draws=200,
    )
    assert isinstance(fig, Figure)
    axes = [ax for ax in fig.axes if ax.get_xlabel()]
    assert len(axes) == space_k2.k
    assert [ax.get_xlabel() for ax in axes] == ["Temperature [°C]", "Agitation [rpm]"]
    assert axes[0].get_ylabel() == "Titer [g/L]"
    assert "site South" in fig._suptitle.get_text()
    assert "30.5 °C" in axes[0].get_title()
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"profiled setpoint", "recipe", "training batches"} <= set(labels)


def test_profiler_names_a_missing_factor(model):
    with pytest.raises(ValueError, match=r"setpoint lacks factor.*agitation"):
        profile(model, {"temperature": 30.0}, {"site": "North"})
