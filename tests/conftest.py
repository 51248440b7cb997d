import matplotlib
import pytest

matplotlib.use("Agg")


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", default=False, help="run slow tests")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long tests; run with --run-slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def _two_factor_space():
    from bayesbio.space import Factor, ProcessSpace, Response

    return ProcessSpace(
        factors=(
            Factor("temperature", "degC", (28.0, 34.0), (4.0, 50.0), "Temperature"),
            Factor("agitation", "rpm", (100.0, 300.0), (0.0, 1500.0), "Agitation"),
        ),
        response=Response("titer", "g/L", (0.0, 50.0), "maximise", "Titer"),
        groups=("site",),
        batch_id="run",
        name="Two-factor test process",
    )


def _two_factor_table(n=40, seed=0):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "run": [f"R{i:03d}" for i in range(n)],
            "site": rng.choice(["North", "South"], n),
            "temperature": np.round(rng.uniform(28, 34, n), 2),
            "agitation": np.round(rng.uniform(100, 300, n), 0),
        }
    )
    df["titer"] = np.round(
        np.exp(1.0 - 0.05 * (df["temperature"] - 31) ** 2 + 0.001 * df["agitation"])
        * rng.lognormal(0, 0.03, n),
        3,
    )
    return df


@pytest.fixture
def space_k2():
    """A custom two-factor process: temperature (degC) and agitation (rpm), titer in g/L."""
    return _two_factor_space()


@pytest.fixture
def table_k2():
    """A clean 40-row table of the two-factor process (batch id 'run', group 'site')."""
    return _two_factor_table()
