import time

import numpy as np
import pandas as pd
import pytest

from bayesbio.replicate import (
    BACKENDS,
    MissingDaskError,
    ReplicationError,
    run_replications,
    spawn_seeds,
)

SEEDS = [11, 5, 42, 7]
SIZES = [8, 30]


# Study functions live at module level so that loky and Dask workers can unpickle them.
def mean_sd_study(seed: int, n: int, scale: float = 1.0) -> pd.DataFrame:
    x = np.random.default_rng(seed).normal(0.0, scale, size=n)
    return pd.DataFrame({"stat": ["mean", "sd"], "value": [x.mean(), x.std(ddof=1)]})


def dict_study(seed: int, n: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    return {"regret": float(rng.exponential(1.0 / n)), "harvest_day": int(rng.integers(10, 15))}


def failing_study(seed: int, n: int) -> float:
    if seed == 5 and n == 30:
        raise ValueError("growth model diverged")
    return float(seed + n)


def slow_first_study(seed: int, n: int) -> float:
    # The first replications sleep longest, so they finish last on parallel backends.
    time.sleep(0.05 * (seed % 5))
    return float(seed * 1000 + n)


def expected_mean_sd(seeds, sizes, scale=1.0):
    frames = []
    for n in sizes:
        for seed in seeds:
            frame = mean_sd_study(seed, n, scale)
            frame.insert(0, "n", n)
            frame.insert(0, "seed", seed)
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("distributed")
    # Worker processes (not threads) so the test exercises pickling as on a real cluster;
    # dashboard on a free port so a busy 8787 does not raise Dask's port warning.
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def dask_client(dask_cluster):
    import distributed

    with distributed.Client(dask_cluster, set_as_default=False) as client:
        yield client


def test_serial_table_has_seed_and_n_columns_in_size_then_seed_order():
    table = run_replications(mean_sd_study, SEEDS, SIZES, backend="serial")
    pd.testing.assert_frame_equal(table, expected_mean_sd(SEEDS, SIZES))
    assert table.columns.tolist() == ["seed", "n", "stat", "value"]
    assert table["seed"].dtype == np.int64 and table["n"].dtype == np.int64


@pytest.mark.parametrize("backend", ["loky", "threading"])
def test_local_parallel_backends_equal_serial_run(backend):
    serial = run_replications(mean_sd_study, SEEDS, SIZES, backend="serial")
    parallel = run_replications(mean_sd_study, SEEDS, SIZES, backend=backend, n_jobs=2)
    pd.testing.assert_frame_equal(parallel, serial)


def test_dask_backend_on_local_cluster_equals_serial_and_loky(dask_cluster, dask_client):
    kwargs = {"study_kwargs": {"scale": 2.5}, "random_seed": 8}
    serial = run_replications(mean_sd_study, 5, SIZES, backend="serial", **kwargs)
    loky = run_replications(mean_sd_study, 5, SIZES, backend="loky", n_jobs=2, **kwargs)
    with_client = run_replications(
        mean_sd_study, 5, SIZES, backend="dask", scheduler=dask_client, **kwargs
    )
    with_address = run_replications(
        mean_sd_study, 5, SIZES, backend="dask", scheduler=dask_cluster.scheduler_address, **kwargs
    )
    pd.testing.assert_frame_equal(loky, serial)
    pd.testing.assert_frame_equal(with_client, serial)
    pd.testing.assert_frame_equal(with_address, serial)
    assert with_client["seed"].unique().tolist() == spawn_seeds(5, 8)
    assert dask_client.status == "running"  # a client passed in is left open


def test_dask_backend_uses_default_client_and_cluster_objects(dask_cluster):
    import distributed

    serial = run_replications(dict_study, SEEDS, SIZES, backend="serial")
    from_cluster = run_replications(
        dict_study, SEEDS, SIZES, backend="dask", scheduler=dask_cluster
    )
    with distributed.Client(dask_cluster):
        from_default = run_replications(dict_study, SEEDS, SIZES, backend="dask")
    pd.testing.assert_frame_equal(from_cluster, serial)
    pd.testing.assert_frame_equal(from_default, serial)


def test_dask_backend_error_names_seed_and_n(dask_client):
    with pytest.raises(ReplicationError, match=r"seed=5, n=30 .*growth model diverged") as info:
        run_replications(failing_study, SEEDS, SIZES, backend="dask", scheduler=dask_client)
    assert (info.value.seed, info.value.n) == (5, 30)


def test_dask_backend_without_client_explains_how_to_connect():
    distributed = pytest.importorskip("distributed")
    with pytest.raises(ValueError):
        distributed.get_client()  # precondition: no default client in this process
    with pytest.raises(ValueError, match=r"needs a running Dask client.*tcp://host:8786"):
        run_replications(dict_study, SEEDS, SIZES, backend="dask")


@pytest.mark.parametrize("backend", ["serial", "loky", "threading"])
def test_failing_replication_is_reraised_naming_seed_and_n(backend):
    with pytest.raises(
        ReplicationError, match=r"seed=5, n=30 failed: ValueError: growth model diverged"
    ) as info:
        run_replications(failing_study, SEEDS, SIZES, backend=backend, n_jobs=2)
    assert (info.value.seed, info.value.n) == (5, 30)
    if backend == "serial":  # joblib's parallel backends replace the cause by a traceback
        assert isinstance(info.value.__cause__, ValueError)


def test_collect_mode_keeps_going_and_records_error_column():
    table = run_replications(
        failing_study, SEEDS, SIZES, backend="loky", n_jobs=2, on_error="collect"
    )
    assert table.columns.tolist() == ["seed", "n", "value", "error"]
    assert len(table) == len(SEEDS) * len(SIZES)
    failed = table[table["error"].notna()]
    assert failed[["seed", "n"]].to_numpy().tolist() == [[5, 30]]
    assert failed["error"].iloc[0] == "ValueError: growth model diverged"
    assert np.isnan(failed["value"].iloc[0])
    ok = table[table["error"].isna()]
    np.testing.assert_array_equal(ok["value"], (ok["seed"] + ok["n"]).astype(float))


def test_order_is_deterministic_when_later_replications_finish_first():
    seeds = [4, 3, 2, 1, 0]  # sleeps of 0.2 s down to 0 s
    expected = [float(s * 1000 + n) for n in (2, 3) for s in seeds]
    for backend in ("threading", "loky"):
        table = run_replications(slow_first_study, seeds, [2, 3], backend=backend, n_jobs=2)
        assert table["value"].tolist() == expected, backend


def test_seeds_from_a_count_are_reproducible_from_random_seed():
    first = run_replications(dict_study, 6, [10], backend="serial", random_seed=2024)
    again = run_replications(dict_study, 6, [10], backend="threading", random_seed=2024)
    other = run_replications(dict_study, 6, [10], backend="serial", random_seed=2025)
    pd.testing.assert_frame_equal(first, again)
    assert first["seed"].tolist() == spawn_seeds(6, 2024)
    assert len(set(first["seed"])) == 6
    assert set(first["seed"]).isdisjoint(other["seed"])
    assert spawn_seeds(3, 2024) == spawn_seeds(6, 2024)[:3]  # growing the count keeps seeds
    expected = [int(c.generate_state(1)[0]) for c in np.random.SeedSequence(2024).spawn(6)]
    assert spawn_seeds(6, 2024) == expected


def test_random_seed_with_explicit_seeds_is_rejected():
    with pytest.raises(ValueError, match="random_seed is used only when seeds is a count"):
        run_replications(dict_study, [1, 2], [10], backend="serial", random_seed=3)


def test_bad_backend_lists_valid_backends():
    with pytest.raises(ValueError, match="backend must be one of") as info:
        run_replications(dict_study, SEEDS, SIZES, backend="multiprocessing")
    for name in BACKENDS:
        assert repr(name) in str(info.value)
    assert "'multiprocessing'" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"on_error": "ignore"}, r"on_error must be one of \['raise', 'collect'\]"),
        ({"seeds": [1, 2, 1]}, r"seeds must be distinct; repeated: \[1\]"),
        ({"seeds": [1, -2]}, r"seeds\[1\] must be a non-negative integer"),
        ({"seeds": []}, "seeds is empty"),
        ({"seeds": 0}, "at least 1"),
        ({"data_sizes": [10, 0]}, r"data_sizes\[1\] must be a positive integer"),
        ({"data_sizes": [10, 10]}, "data_sizes must be distinct"),
        ({"n_jobs": 0}, "n_jobs must be a non-zero integer"),
        ({"scheduler": "tcp://host:8786"}, 'scheduler is used only with backend="dask"'),
    ],
)
def test_invalid_arguments_raise_naming_the_argument(kwargs, message):
    arguments = {"seeds": SEEDS, "data_sizes": SIZES, "backend": "serial", **kwargs}
    with pytest.raises(ValueError, match=message):
        run_replications(dict_study, **arguments)


def test_result_shapes_dict_scalar_series_and_indexed_frame():
    from_dict = run_replications(dict_study, [1], [4], backend="serial")
    assert from_dict.columns.tolist() == ["seed", "n", "regret", "harvest_day"]
    assert from_dict.iloc[0]["regret"] == dict_study(1, 4)["regret"]

    scalar = run_replications(failing_study, [1, 2], [4], backend="serial")
    assert scalar.to_dict("list") == {"seed": [1, 2], "n": [4, 4], "value": [5.0, 6.0]}

    series = run_replications(
        lambda seed, n: pd.Series({"a": seed, "b": n}), [3], [4], backend="serial"
    )
    assert series[["a", "b"]].to_numpy().tolist() == [[3, 4]]

    indexed = run_replications(
        lambda seed, n: pd.DataFrame({"y": [1.0, 2.0]}, index=pd.Index(["A", "B"], name="site")),
        [3],
        [4],
        backend="serial",
    )
    assert indexed.columns.tolist() == ["seed", "n", "site", "y"]
    assert indexed["site"].tolist() == ["A", "B"]


def test_result_with_reserved_column_or_unsupported_type_is_rejected():
    with pytest.raises(ValueError, match=r"seed=3, n=4: .*column\(s\) \['seed'\]"):
        run_replications(lambda seed, n: {"seed": seed}, [3], [4], backend="serial")
    with pytest.raises(TypeError, match=r"seed=3, n=4: study_fn returned list"):
        run_replications(lambda seed, n: [seed], [3], [4], backend="serial")


def test_progress_bar_does_not_change_results():
    plain = run_replications(mean_sd_study, SEEDS, SIZES, backend="serial")
    shown = run_replications(mean_sd_study, SEEDS, SIZES, backend="serial", progress=True)
    pd.testing.assert_frame_equal(shown, plain)


def test_dask_backend_without_dask_names_the_extra_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(MissingDaskError, match=r'pip install "bayesbio\[dask\]"'):
        run_replications(dict_study, SEEDS, SIZES, backend="dask")
    assert issubclass(MissingDaskError, ImportError)
    # the other backends never need dask
    assert len(run_replications(dict_study, SEEDS, SIZES, backend="serial")) == 8


def test_dask_is_an_optional_extra_and_still_in_the_test_extra():
    import tomllib
    from pathlib import Path

    project = tomllib.loads(
        (Path(__file__).parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    )["project"]
    assert not any(d.startswith("dask") for d in project["dependencies"])
    extras = project["optional-dependencies"]
    assert any(d.startswith("dask[distributed]") for d in extras["dask"])
    assert any(d.startswith("dask[distributed]") for d in extras["test"])
