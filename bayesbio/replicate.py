"""Run many independent study replications in parallel and gather one tidy table.

A *replication* is one call ``study_fn(seed, n, **study_kwargs)``: a whole simulation study
(simulate ``n`` batches with ``seed``, fit, recommend, score; or one harvest-policy run) whose
result is a DataFrame, a mapping or a scalar. :func:`run_replications` calls it for every
``(n, seed)`` pair through :mod:`joblib`, on one of four backends:

``"serial"``
    In this process, one after another (joblib's sequential backend); easiest to debug.
``"loky"`` (default)
    Worker processes on this machine (joblib's default backend).
``"threading"``
    Threads in this process; useful when ``study_fn`` spends its time in code that releases
    the GIL (NumPy, compiled samplers).
``"dask"``
    Tasks on a ``dask.distributed`` cluster, through joblib's Dask backend. Pass
    ``scheduler="tcp://host:8786"`` (the address of a running scheduler), an existing
    ``distributed.Client`` or a cluster object (``LocalCluster``, ``SLURMCluster``, ...);
    with ``scheduler=None`` the current default client is used. Dask is an optional extra
    (``pip install "bayesbio[dask]"``); without it this backend raises
    :class:`MissingDaskError` saying so.

Every backend gives the same table, rows in the same order, for the same seeds.
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import joblib
import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "BACKENDS",
    "ON_ERROR",
    "MissingDaskError",
    "ReplicationError",
    "run_replications",
    "spawn_seeds",
]

BACKENDS: tuple[str, ...] = ("serial", "loky", "threading", "dask")
"""Valid values of ``backend`` in :func:`run_replications`."""

ON_ERROR: tuple[str, ...] = ("raise", "collect")
"""Valid values of ``on_error`` in :func:`run_replications`."""

_ADDED_COLUMNS = ("seed", "n")
_ERROR_COLUMN = "error"
_JOBLIB_BACKEND = {"serial": "sequential", "loky": "loky", "threading": "threading"}


class ReplicationError(RuntimeError):
    """A replication raised an exception; the message names its ``seed`` and ``n``.

    Parameters
    ----------
    message : str
        Full description, including the original exception's type and message.
    seed : int
        Seed of the failed replication.
    n : int
        Data size of the failed replication.
    """

    def __init__(self, message: str, seed: int, n: int) -> None:
        super().__init__(message)
        self.seed = seed
        self.n = n

    def __reduce__(self) -> tuple[type[ReplicationError], tuple[str, int, int]]:
        # Explicit so that the error survives the trip back from loky and Dask workers.
        return (type(self), (str(self), self.seed, self.n))


@dataclass(frozen=True)
class _Outcome:
    """What one replication sent back: its result, or a description of its failure."""

    result: Any = None
    error: str | None = None


class MissingDaskError(ImportError):
    """``backend="dask"`` was asked for but dask.distributed is not installed."""


def _run_one(
    study_fn: Callable[..., Any],
    seed: int,
    n: int,
    study_kwargs: Mapping[str, Any],
    collect: bool,
) -> _Outcome:
    """Run one replication (in a worker) and wrap its result or its error."""
    try:
        return _Outcome(result=study_fn(seed, n, **study_kwargs))
    except Exception as exc:
        description = f"{type(exc).__name__}: {exc}"
        if collect:
            return _Outcome(error=description)
        raise ReplicationError(
            f"replication with seed={seed}, n={n} failed: {description}", seed, n
        ) from exc


def spawn_seeds(count: int, random_seed: int | None = None) -> list[int]:
    """Derive ``count`` independent replication seeds from one root seed.

    Each seed is the first 32-bit word of a child of
    ``np.random.SeedSequence(random_seed).spawn(count)``, so the same ``random_seed`` always
    gives the same seeds, and the first ``k`` seeds do not change when ``count`` grows.

    Parameters
    ----------
    count : int
        Number of seeds, at least 1.
    random_seed : int or None, default None
        Root seed. ``None`` draws fresh entropy from the operating system (not reproducible).

    Returns
    -------
    list of int
        ``count`` non-negative integers below ``2**32``.

    Raises
    ------
    ValueError
        If ``count`` is not a positive integer.
    """
    if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 1:
        raise ValueError(f"count must be a positive integer, got {count!r}")
    children = np.random.SeedSequence(random_seed).spawn(int(count))
    return [int(child.generate_state(1, dtype=np.uint32)[0]) for child in children]


def _check_seeds(seeds: int | Sequence[int], random_seed: int | None) -> list[int]:
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ValueError(f"seeds: a count of replications must be at least 1, got {seeds}")
        return spawn_seeds(int(seeds), random_seed)
    if random_seed is not None:
        raise ValueError(
            "random_seed is used only when seeds is a count; with an explicit list of seeds "
            "pass random_seed=None"
        )
    if isinstance(seeds, str | bytes) or not isinstance(seeds, Sequence | np.ndarray):
        raise ValueError(
            f"seeds must be a positive int (a count) or a sequence of ints, got {seeds!r}"
        )
    checked = []
    for position, seed in enumerate(seeds):
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"seeds[{position}] must be a non-negative integer, got {seed!r}")
        checked.append(int(seed))
    if not checked:
        raise ValueError("seeds is empty: give at least one seed")
    repeated = sorted({s for s in checked if checked.count(s) > 1})
    if repeated:
        raise ValueError(f"seeds must be distinct; repeated: {repeated}")
    return checked


def _check_sizes(data_sizes: int | Sequence[int]) -> list[int]:
    if isinstance(data_sizes, numbers.Integral) and not isinstance(data_sizes, bool):
        data_sizes = [data_sizes]
    if isinstance(data_sizes, str | bytes) or not isinstance(data_sizes, Sequence | np.ndarray):
        raise ValueError(
            f"data_sizes must be a positive int or a sequence of them, got {data_sizes!r}"
        )
    checked = []
    for position, n in enumerate(data_sizes):
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"data_sizes[{position}] must be a positive integer, got {n!r}")
        checked.append(int(n))
    if not checked:
        raise ValueError("data_sizes is empty: give at least one data size")
    repeated = sorted({n for n in checked if checked.count(n) > 1})
    if repeated:
        raise ValueError(f"data_sizes must be distinct; repeated: {repeated}")
    return checked


def _as_frame(result: Any, seed: int, n: int) -> pd.DataFrame:
    """Turn one study result into rows, with ``seed`` and ``n`` as the first columns."""
    if isinstance(result, pd.DataFrame):
        default_index = isinstance(result.index, pd.RangeIndex) and result.index.name is None
        frame = result.reset_index(drop=default_index)
    elif isinstance(result, pd.Series):
        frame = result.to_frame().T.reset_index(drop=True)
    elif isinstance(result, Mapping):
        frame = pd.DataFrame([dict(result)])
    elif isinstance(result, numbers.Number | np.generic | str) or result is None:
        frame = pd.DataFrame({"value": [result]})
    else:
        raise TypeError(
            f"replication with seed={seed}, n={n}: study_fn returned "
            f"{type(result).__name__}; expected a DataFrame, a mapping or a scalar"
        )
    clash = [c for c in (*_ADDED_COLUMNS, _ERROR_COLUMN) if c in frame.columns]
    if clash:
        raise ValueError(
            f"replication with seed={seed}, n={n}: study_fn result has column(s) {clash}, "
            f"which run_replications adds itself; rename them"
        )
    frame.insert(0, "n", np.full(len(frame), n, dtype=np.int64))
    frame.insert(0, "seed", np.full(len(frame), seed, dtype=np.int64))
    return frame


@contextlib.contextmanager
def _dask_client(scheduler: Any) -> Iterator[Client]:
    """Yield a ``distributed.Client`` for ``scheduler``; close it after only if made here."""
    try:
        import distributed
    except ImportError as exc:
        raise MissingDaskError(
            'backend="dask" needs dask.distributed, an optional extra: '
            'pip install "bayesbio[dask]" (or use backend="loky")'
        ) from exc
    if isinstance(scheduler, distributed.Client):
        yield scheduler
        return
    if scheduler is None:
        try:
            yield distributed.get_client()
        except ValueError as exc:
            raise ValueError(
                'backend="dask" with scheduler=None needs a running Dask client: create one '
                "(distributed.Client(...)) or pass scheduler='tcp://host:8786', a Client or a "
                "cluster object"
            ) from exc
        return
    if not isinstance(scheduler, str) and not hasattr(scheduler, "scheduler_address"):
        raise ValueError(
            "scheduler must be a scheduler address such as 'tcp://host:8786', a "
            f"distributed.Client or a cluster object, got {type(scheduler).__name__}"
        )
    client = distributed.Client(scheduler, set_as_default=False)
    try:
        yield client
    finally:
        client.close()


def run_replications(
    study_fn: Callable[..., Any],
    seeds: int | Sequence[int],
    data_sizes: int | Sequence[int],
    *,
    backend: Literal["serial", "loky", "threading", "dask"] = "loky",
    n_jobs: int = -1,
    random_seed: int | None = None,
    scheduler: str | Client | Any | None = None,
    on_error: Literal["raise", "collect"] = "raise",
    progress: bool = False,
    study_kwargs: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Run ``study_fn`` once per (data size, seed) pair and stack the results in one table.

    Every seed is used at every data size (common random numbers), so differences between
    sizes are not blurred by different seeds.

    Parameters
    ----------
    study_fn : callable
        ``study_fn(seed: int, n: int, **study_kwargs)`` returning a DataFrame (its rows are
        kept; a named or non-range index becomes columns), a mapping or ``pandas.Series``
        (one row) or a scalar (one row, column ``value``). It must not return columns named
        ``seed``, ``n`` or ``error``. For the ``"loky"`` and ``"dask"`` backends it must be
        picklable: define it at module level, not as a lambda or closure in ``__main__``
        when the workers cannot import it.
    seeds : int or sequence of int
        A count of replications, whose seeds are derived from ``random_seed`` by
        :func:`spawn_seeds`, or the distinct non-negative seeds themselves.
    data_sizes : int or sequence of int
        Distinct positive data sizes ``n`` (e.g. numbers of batches).
    backend : {"serial", "loky", "threading", "dask"}, default "loky"
        Where replications run; see the module docstring.
    n_jobs : int, default -1
        Number of parallel workers for ``"loky"`` and ``"threading"`` (``-1``: one per CPU).
        Ignored by ``"serial"`` (always 1) and by ``"dask"``, which uses every worker thread
        of the cluster.
    random_seed : int or None, default None
        Root seed from which a count of ``seeds`` is derived. Must be ``None`` when ``seeds``
        is an explicit sequence.
    scheduler : str, distributed.Client, cluster object or None, default None
        Only for ``backend="dask"``: the address of a running scheduler
        (``"tcp://host:8786"``; a client is opened and closed around the run), an existing
        ``distributed.Client`` (used and left open), a cluster object such as
        ``distributed.LocalCluster`` (a client is opened and closed around the run), or
        ``None`` for the current default client.
    on_error : {"raise", "collect"}, default "raise"
        ``"raise"``: the first failing replication raises :class:`ReplicationError` naming
        its ``seed`` and ``n``. ``"collect"``: every replication runs; failures become one
        row with the exception's type and message in an ``error`` column (missing for
        successful rows), and the study's own columns are missing on that row.
    progress : bool, default False
        Show a ``rich`` progress bar on standard error.
    study_kwargs : mapping or None, default None
        Extra keyword arguments passed to every call of ``study_fn``.

    Returns
    -------
    pandas.DataFrame
        ``seed``, ``n``, then the study's columns (and ``error`` last with
        ``on_error="collect"``), one block of rows per replication, ordered by data size (in
        the order given) and then seed (in the order given or derived), with a fresh
        ``RangeIndex``. The same on every backend.

    Raises
    ------
    ValueError
        For an unknown ``backend`` or ``on_error`` (listing the valid values), bad ``seeds``,
        ``data_sizes``, ``n_jobs`` or ``scheduler``, or a Dask backend without a client.
    MissingDaskError
        For ``backend="dask"`` when dask.distributed is not installed (an optional extra:
        ``pip install "bayesbio[dask]"``).
    ReplicationError
        With ``on_error="raise"``, when a replication fails; the original exception is its
        cause where the backend keeps it.
    TypeError
        When ``study_fn`` returns something other than a DataFrame, mapping or scalar.

    Examples
    --------
    >>> def study(seed, n):
    ...     rng = np.random.default_rng(seed)
    ...     return {"mean": rng.normal(size=n).mean()}
    >>> table = run_replications(study, 3, [10, 100], backend="serial", random_seed=1)
    >>> table.columns.tolist(), len(table)
    (['seed', 'n', 'mean'], 6)
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {list(ON_ERROR)}, got {on_error!r}")
    if not callable(study_fn):
        raise ValueError(f"study_fn must be callable, got {type(study_fn).__name__}")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0:
        raise ValueError(f"n_jobs must be a non-zero integer (-1: all CPUs), got {n_jobs!r}")
    if scheduler is not None and backend != "dask":
        raise ValueError(f'scheduler is used only with backend="dask", not {backend!r}')
    seed_list = _check_seeds(seeds, random_seed)
    sizes = _check_sizes(data_sizes)
    kwargs = dict(study_kwargs or {})
    collect = on_error == "collect"
    pairs = [(seed, n) for n in sizes for seed in seed_list]
    tasks = (joblib.delayed(_run_one)(study_fn, seed, n, kwargs, collect) for seed, n in pairs)

    with contextlib.ExitStack() as stack:
        if backend == "dask":
            client = stack.enter_context(_dask_client(scheduler))
            stack.enter_context(joblib.parallel_config(backend="dask", client=client))
            parallel = joblib.Parallel(return_as="generator")
        else:
            jobs = 1 if backend == "serial" else int(n_jobs)
            parallel = joblib.Parallel(
                n_jobs=jobs, backend=_JOBLIB_BACKEND[backend], return_as="generator"
            )
        outcomes = _gather(parallel(tasks), len(pairs), progress=progress)

    frames = []
    for (seed, n), outcome in zip(pairs, outcomes, strict=True):
        if outcome.error is None:
            frame = _as_frame(outcome.result, seed, n)
            if collect:
                frame[_ERROR_COLUMN] = pd.Series([None] * len(frame), dtype=object)
        else:
            frame = pd.DataFrame(
                {"seed": [seed], "n": [n], _ERROR_COLUMN: pd.Series([outcome.error], dtype=object)}
            )
            frame = frame.astype({"seed": np.int64, "n": np.int64})
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    if collect:
        table = table[[c for c in table.columns if c != _ERROR_COLUMN] + [_ERROR_COLUMN]]
    return table


def _gather(results: Iterator[_Outcome], total: int, *, progress: bool) -> list[_Outcome]:
    """Collect the outcomes in submission order, advancing a progress bar if asked."""
    if not progress:
        return list(results)
    from rich.progress import Progress

    collected = []
    with Progress(transient=False) as bar:
        task = bar.add_task("replications", total=total)
        for outcome in results:
            collected.append(outcome)
            bar.advance(task)
    return collected
