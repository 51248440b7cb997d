"""Evaluation harness: shared folds, point and probabilistic metrics, model comparison, plots.

:func:`compare` fits every model on exactly the same folds (built once by :func:`make_folds`
and recorded in ``Comparison.folds``) and scores the held-out batches. It relies only on the
model protocol (``docs/ARCHITECTURE.md``, :class:`~bayesbio.models.protocol.YieldModel`):
``fit(table)``, ``predict``, and where present ``predict_interval`` (coverage and width of the
50 % and 90 % intervals) and ``predict_draws`` (CRPS, via :func:`scoringrules.crps_ensemble`).
Plain scikit-learn regressors are scored on RMSE, MAE and R² using the space's factors as
features.

Factor, response, group and batch-id names come from the process space: the ``space=``
argument, else the space the models were built with (``space`` constructor argument), else
the default space. Every model must share it; a fitted model's ``space_`` is checked against
it.

Held-out batches whose group labels (e.g. scale, site, campaign) were all seen in training
are predicted with ``kind="existing"``; the others (a held-out site in a leave-one-group-out
fold) with ``kind="new_group"`` (when the model's methods take ``kind``).

Warnings raised while fitting or predicting (e.g. a ``ConvergenceWarning`` from the Bayesian
model) are recorded in ``Comparison.warnings`` and re-issued to the caller, also when folds
run in parallel (``n_jobs``), so they are never swallowed.
"""

from __future__ import annotations

import inspect
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scoringrules as sr
from joblib import Parallel, delayed
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.base import clone
from sklearn.model_selection import LeaveOneGroupOut, RepeatedKFold

from bayesbio import schema
from bayesbio.checks import check_fraction
from bayesbio.models._tables import quiet_extrapolation
from bayesbio.models.protocol import YieldModel
from bayesbio.space import ProcessSpace, display_unit, resolve_space, with_unit

__all__ = [
    "POINT_METRICS",
    "PROBABILISTIC_METRICS",
    "SCHEMES",
    "Comparison",
    "Fold",
    "compare",
    "coverage",
    "crps",
    "interval_width",
    "mae",
    "make_folds",
    "plot_calibration",
    "plot_learning_curve",
    "plot_predicted_vs_observed",
    "plot_residuals",
    "plot_scores",
    "r2",
    "rmse",
]

#: Cross-validation schemes known to :func:`make_folds`.
SCHEMES: tuple[str, ...] = ("split", "kfold", "group", "learning_curve")
#: Metrics computed for every model.
POINT_METRICS: tuple[str, ...] = ("rmse", "mae", "r2")
#: Metrics for models with ``predict_interval`` / ``predict_draws`` (for ci_probs 0.5, 0.9).
PROBABILISTIC_METRICS: tuple[str, ...] = (
    "coverage_50",
    "width_50",
    "coverage_90",
    "width_90",
    "crps",
)


# ---- metrics ---------------------------------------------------------------------------------
def _pair(y: Any, pred: Any) -> tuple[np.ndarray, np.ndarray]:
    y_arr = np.asarray(y, dtype=float).ravel()
    p_arr = np.asarray(pred, dtype=float).ravel()
    if y_arr.shape != p_arr.shape:
        raise ValueError(f"observed has {y_arr.size} values but predicted has {p_arr.size}")
    return y_arr, p_arr


def rmse(y: Any, pred: Any) -> float:
    """Root mean squared error, in the units of ``y``.

    Parameters
    ----------
    y, pred : array-like
        Observed and predicted values.

    Returns
    -------
    float
        ``sqrt(mean((y - pred)^2))``.
    """
    y_arr, p_arr = _pair(y, pred)
    return float(np.sqrt(np.mean((y_arr - p_arr) ** 2)))


def mae(y: Any, pred: Any) -> float:
    """Mean absolute error, in the units of ``y``.

    Parameters
    ----------
    y, pred : array-like
        Observed and predicted values.

    Returns
    -------
    float
        ``mean(|y - pred|)``.
    """
    y_arr, p_arr = _pair(y, pred)
    return float(np.mean(np.abs(y_arr - p_arr)))


def r2(y: Any, pred: Any) -> float:
    """Coefficient of determination on held-out data.

    Parameters
    ----------
    y, pred : array-like
        Observed and predicted values.

    Returns
    -------
    float
        ``1 - SS_res / SS_tot`` (around the held-out mean); NaN with fewer than two values or
        constant ``y``.
    """
    y_arr, p_arr = _pair(y, pred)
    ss_tot = float(np.sum((y_arr - y_arr.mean()) ** 2))
    if y_arr.size < 2 or ss_tot == 0.0:
        return math.nan
    return 1.0 - float(np.sum((y_arr - p_arr) ** 2)) / ss_tot


def coverage(y: Any, lower: Any, upper: Any) -> float:
    """Share of observations inside ``[lower, upper]``.

    Parameters
    ----------
    y, lower, upper : array-like
        Observed values and interval bounds.

    Returns
    -------
    float
        Empirical coverage in [0, 1].
    """
    y_arr, lo = _pair(y, lower)
    _, hi = _pair(y, upper)
    return float(np.mean((lo <= y_arr) & (y_arr <= hi)))


def interval_width(lower: Any, upper: Any) -> float:
    """Mean interval width ``upper - lower``.

    Parameters
    ----------
    lower, upper : array-like
        Interval bounds.

    Returns
    -------
    float
        Mean width, in the units of the bounds.
    """
    lo, hi = _pair(lower, upper)
    return float(np.mean(hi - lo))


def crps(y: Any, draws: Any) -> float:
    """Mean continuous ranked probability score of predictive draws (lower is better).

    Parameters
    ----------
    y : array-like
        Observed values, length ``n``.
    draws : array-like
        Predictive draws, shape ``(n_draws, n)`` (the model protocol's layout).

    Returns
    -------
    float
        Mean CRPS over observations (:func:`scoringrules.crps_ensemble`, unbiased ``"fair"``
        estimator), in the units of ``y``.
    """
    y_arr = np.asarray(y, dtype=float).ravel()
    d = np.asarray(draws, dtype=float)
    if d.ndim != 2 or d.shape[1] != y_arr.size:
        raise ValueError(f"draws must have shape (n_draws, {y_arr.size}); got {d.shape}")
    return float(np.mean(sr.crps_ensemble(y_arr, d.T, m_axis=-1, estimator="fair")))


# ---- folds -----------------------------------------------------------------------------------
class Fold(NamedTuple):
    """One train/test split, positions into the (validated) table.

    Attributes
    ----------
    scheme : str
        Scheme name (``"kfold"``, ...).
    fold : str
        Fold label, unique within the scheme.
    train, test : ndarray of int
        Row positions.
    repeat : int
        Repeat number (0 when not repeated).
    """

    scheme: str
    fold: str
    train: np.ndarray
    test: np.ndarray
    repeat: int


def _default_group_column(table: pd.DataFrame, space: ProcessSpace) -> str:
    """``site``, else ``scale`` when the space has them, else its first group with >= 2 levels."""
    preferred = [g for g in ("site", "scale") if g in space.groups]
    for column in (*preferred, *space.groups):
        if column in table.columns and table[column].nunique() >= 2:
            return column
    raise ValueError(
        f"cv='group' needs a group column with at least 2 levels among the space's groups "
        f"{list(space.groups)}; pass group_column=..."
    )


def make_folds(
    table: pd.DataFrame,
    cv: str | Sequence[str] | Any = "kfold",
    *,
    n_splits: int = 5,
    n_repeats: int = 1,
    test_size: float = 0.25,
    group_column: str | None = None,
    train_sizes: Sequence[int] | None = None,
    random_seed: int | None = None,
    space: ProcessSpace | str | Path | None = None,
) -> list[Fold]:
    """Build train/test splits once, so that every model can be given the same ones.

    Parameters
    ----------
    table : pandas.DataFrame
        The batch table.
    cv : str, sequence of str or splitter, default "kfold"
        ``"split"``: one random train/test split (``test_size``). ``"kfold"``: repeated
        K-fold (``n_splits`` x ``n_repeats``). ``"group"``: leave one level of
        ``group_column`` out. ``"learning_curve"``: for each repeat, a random held-out set of
        ``test_size`` and training sets of the first ``n`` of the remaining (shuffled)
        batches, for ``n`` in ``train_sizes``. A sequence combines schemes; an object with a
        scikit-learn ``split(X, y, groups)`` method gives scheme ``"custom"``.
    n_splits : int, default 5
        K of K-fold.
    n_repeats : int, default 1
        Repeats of K-fold and of the learning curve.
    test_size : float, default 0.25
        Held-out share for ``"split"`` and ``"learning_curve"``.
    group_column : str, optional
        Group column for ``"group"``; default ``site`` (else ``scale``) when the space has
        them, else the space's first group column with at least 2 levels.
    train_sizes : sequence of int, optional
        Learning-curve training sizes; default 10, 20, 40, 80, ... up to the batches left
        after the held-out set.
    random_seed : int, optional
        Seed for shuffling.
    space : ProcessSpace, path or None, optional
        The process space (group columns, response name); None: the default space.

    Returns
    -------
    list of Fold
        The splits, in order.

    Raises
    ------
    ValueError
        For an unknown scheme or impossible sizes, naming the argument.
    """
    sp = resolve_space(space)
    n = len(table)
    rng = np.random.default_rng(random_seed)
    schemes: list[Any] = [cv] if isinstance(cv, str) or hasattr(cv, "split") else list(cv)
    if not schemes:
        raise ValueError("cv: give at least one scheme")
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be strictly between 0 and 1; got {test_size!r}")
    folds: list[Fold] = []
    for scheme in schemes:
        if not isinstance(scheme, str) and hasattr(scheme, "split"):
            response = sp.response.name
            y = table[response] if response in table.columns else None
            for i, (tr, te) in enumerate(scheme.split(table, y)):
                folds.append(Fold("custom", f"f{i}", np.asarray(tr), np.asarray(te), 0))
            continue
        if scheme not in SCHEMES:
            raise ValueError(f"cv: unknown scheme {scheme!r}; choose from {list(SCHEMES)}")
        n_test = max(1, round(test_size * n))
        if scheme == "split":
            perm = rng.permutation(n)
            folds.append(Fold("split", "split", np.sort(perm[n_test:]), np.sort(perm[:n_test]), 0))
        elif scheme == "kfold":
            if not 2 <= n_splits <= n:
                raise ValueError(f"n_splits must be between 2 and the {n} batches; got {n_splits}")
            splitter = RepeatedKFold(
                n_splits=n_splits, n_repeats=n_repeats, random_state=int(rng.integers(2**31 - 1))
            )
            for i, (tr, te) in enumerate(splitter.split(np.zeros(n))):
                r, k = divmod(i, n_splits)
                folds.append(Fold("kfold", f"r{r}k{k}", tr, te, r))
        elif scheme == "group":
            column = group_column or _default_group_column(table, sp)
            if column not in table.columns:
                raise schema.SchemaError(
                    f"group_column '{column}' is not a column of the table {list(table.columns)}"
                )
            labels = table[column].astype(str).to_numpy()
            if len(np.unique(labels)) < 2:
                raise ValueError(
                    f"group_column '{column}' has a single level; cannot leave one out"
                )
            for tr, te in LeaveOneGroupOut().split(np.zeros(n), groups=labels):
                folds.append(Fold("group", f"{column}={labels[te[0]]}", tr, te, 0))
        else:
            available = n - n_test
            if train_sizes is None:
                sizes = [s for s in (10 * 2**k for k in range(20)) if s <= available]
            else:
                sizes = [int(s) for s in train_sizes]
            bad = [s for s in sizes if not 2 <= s <= available]
            if not sizes or bad:
                raise ValueError(
                    f"train_sizes {bad or sizes} impossible: with {n} batches and test_size="
                    f"{test_size} between 2 and {available} batches are available for training"
                )
            for r in range(n_repeats):
                perm = rng.permutation(n)
                test, pool = np.sort(perm[:n_test]), perm[n_test:]
                for s in sizes:
                    folds.append(Fold("learning_curve", f"n{s}r{r}", np.sort(pool[:s]), test, r))
    return folds


def _folds_frame(folds: Sequence[Fold], table: pd.DataFrame, space: ProcessSpace) -> pd.DataFrame:
    batch_id = space.batch_id
    ids = table[batch_id].to_numpy() if batch_id in table.columns else None
    parts = []
    for f in folds:
        for role, rows in (("train", f.train), ("test", f.test)):
            part = pd.DataFrame(
                {
                    "scheme": f.scheme,
                    "fold": f.fold,
                    "repeat": f.repeat,
                    "train_size": len(f.train),
                    "role": role,
                    "row": rows,
                }
            )
            if ids is not None:
                part[batch_id] = ids[rows]
            parts.append(part)
    return pd.concat(parts, ignore_index=True)


# ---- running models --------------------------------------------------------------------------
def _accepts(method: Callable[..., Any], name: str) -> bool:
    try:
        return name in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


def _is_protocol(model: Any) -> bool:
    """Whether ``model`` is fitted on the batch table (the bayesbio model protocol).

    A fitted model is checked against :class:`YieldModel`; an unfitted clone has no
    ``space_``/``training_table_`` yet, so it is recognised by its predictive methods.
    """
    return (
        isinstance(model, YieldModel)
        or hasattr(model, "predict_interval")
        or hasattr(model, "predict_draws")
    )


def _seed_model(model: Any, seed: int) -> None:
    params = model.get_params(deep=False)
    for key in ("random_state", "random_seed"):
        if key in params and params[key] is None:
            model.set_params(**{key: seed})


def _model_space(model: Any) -> ProcessSpace | None:
    """Return the space a model was built with (its ``space`` argument); None if unset.

    Per-fold clones are refitted, so a fitted model's ``space_`` does not bind them.
    """
    get_params = getattr(model, "get_params", None)
    params = get_params(deep=False) if callable(get_params) else {}
    value = params.get("space")
    return None if value is None else resolve_space(value)


def _resolve_comparison_space(
    models: Mapping[str, Any], space: ProcessSpace | str | Path | None
) -> tuple[ProcessSpace, bool]:
    """Return the comparison's space and whether models without one are to be given it."""
    declared = {name: _model_space(m) for name, m in models.items()}
    declared = {k: v for k, v in declared.items() if v is not None}
    if space is not None:
        sp = resolve_space(space)
    elif declared:
        sp = next(iter(declared.values()))
    else:
        return ProcessSpace.default(), False
    other = sorted(k for k, v in declared.items() if v.fingerprint != sp.fingerprint)
    if other:
        raise ValueError(
            f"models {other} were built for another process space than the comparison's "
            f"({sp.name!r}, factors {list(sp.factor_names)}); give every model the same space"
        )
    return sp, True


def _assign_space(model: Any, space: ProcessSpace) -> None:
    params = model.get_params(deep=False)
    if "space" in params and params["space"] is None:
        model.set_params(space=space)


def _kind_subsets(
    model: Any, train: pd.DataFrame, test: pd.DataFrame, space: ProcessSpace
) -> list[tuple[str, Any]]:
    """Split held-out rows into those whose groups were all seen in training and the rest."""
    groups = getattr(model, "groups_", None)
    if groups is None:
        spec = getattr(model, "spec_", None)
        groups = spec.get("groups") if isinstance(spec, Mapping) else None
    if groups is None:
        groups = space.group_columns(train, model.get_params(deep=False).get("groups"))
    seen = np.ones(len(test), dtype=bool)
    for g in groups:
        if g in test.columns and g in train.columns:
            seen &= test[g].isin(set(train[g])).to_numpy()
    out = [("existing", seen), ("new_group", ~seen)]
    return [(kind, mask) for kind, mask in out if mask.any()]


def _call(method: Callable[..., Any], X: pd.DataFrame, kind: str, **kwargs: Any) -> Any:
    if _accepts(method, "kind"):
        return method(X, kind=kind, **kwargs)
    return method(X, **kwargs)


def _evaluate_fold(
    name: str,
    model: Any,
    table: pd.DataFrame,
    fold: Fold,
    ci_probs: Sequence[float],
    n_draws: int,
    seed: int,
    space: ProcessSpace,
    give_space: bool,
) -> tuple[pd.DataFrame, list[dict[str, Any]], list[warnings.WarningMessage]]:
    train = table.iloc[fold.train]
    test = table.iloc[fold.test]
    response = space.response.name
    factors = list(space.factor_names)
    y = test[response].to_numpy(dtype=float)
    X = test.drop(columns=[response])
    est = clone(model)
    _seed_model(est, seed)
    if give_space:
        _assign_space(est, space)
    pred = pd.DataFrame({"row": fold.test})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        try:
            protocol = _is_protocol(est)
            if protocol:
                est.fit(train)
                if isinstance(est, YieldModel) and est.space_.fingerprint != space.fingerprint:
                    raise ValueError(
                        f"fitted on process space {est.space_.name!r} (factors "
                        f"{list(est.space_.factor_names)}), not the comparison's "
                        f"{space.name!r} (factors {factors})"
                    )
            else:
                est.fit(train[factors], train[response])
            seconds = time.perf_counter() - start
            mean = np.empty(len(test))
            bounds = {p: (np.empty(len(test)), np.empty(len(test))) for p in ci_probs}
            draws = np.empty((n_draws, len(test)))
            kinds = np.empty(len(test), dtype=object)
            if not protocol:
                mean[:] = est.predict(X[factors])
                kinds[:] = "existing"
            with quiet_extrapolation():  # held-out batches: predicting them is the test
                for kind, mask in _kind_subsets(est, train, X, space) if protocol else []:
                    sub = X.loc[X.index[mask]]
                    kinds[mask] = kind
                    if _accepts(est.predict, "kind") or kind == "existing":
                        mean[mask] = _call(est.predict, sub, kind)
                    else:
                        mean[mask] = _call(est.predict_interval, sub, kind)["mean"].to_numpy()
                    if hasattr(est, "predict_interval"):
                        for p in ci_probs:
                            iv = _call(est.predict_interval, sub, kind, ci_prob=p)
                            bounds[p][0][mask] = iv["lower"].to_numpy()
                            bounds[p][1][mask] = iv["upper"].to_numpy()
                    if hasattr(est, "predict_draws"):
                        draws[:, mask] = _call(
                            est.predict_draws,
                            sub,
                            kind,
                            n_draws=n_draws,
                            noise=True,
                            random_seed=seed,
                        )
        except Exception as err:
            raise RuntimeError(
                f"model {name!r} failed on {fold.scheme} fold {fold.fold!r}: {err}"
            ) from err
    base = {"model": name, "scheme": fold.scheme, "fold": fold.fold, "train_size": len(train)}
    scores = [
        {**base, "metric": "rmse", "value": rmse(y, mean)},
        {**base, "metric": "mae", "value": mae(y, mean)},
        {**base, "metric": "r2", "value": r2(y, mean)},
    ]
    pred = pred.assign(**base, kind=kinds, observed=y, predicted=mean)
    if space.batch_id in test.columns:
        pred[space.batch_id] = test[space.batch_id].to_numpy()
    if protocol and hasattr(est, "predict_interval"):
        for p in ci_probs:
            tag = f"{round(100 * p):d}"
            lo, hi = bounds[p]
            pred[f"lower_{tag}"] = lo
            pred[f"upper_{tag}"] = hi
            scores.append({**base, "metric": f"coverage_{tag}", "value": coverage(y, lo, hi)})
            scores.append({**base, "metric": f"width_{tag}", "value": interval_width(lo, hi)})
    if protocol and hasattr(est, "predict_draws"):
        scores.append({**base, "metric": "crps", "value": crps(y, draws)})
    scores.append({**base, "metric": "fit_seconds", "value": seconds})
    for column in (*factors, *space.group_columns(test)):
        pred[column] = test[column].to_numpy()
    return pred, scores, list(caught)


@dataclass
class Comparison:
    """Result of :func:`compare`.

    Attributes
    ----------
    scores : pandas.DataFrame
        Tidy: ``model, scheme, fold, train_size, metric, value``.
    predictions : pandas.DataFrame
        Tidy out-of-fold predictions: ``row`` (position in the table), ``model, scheme, fold,
        train_size, kind, observed, predicted``, ``lower_50 ... upper_90`` where available,
        ``batch_id``, the parameters and the group columns.
    folds : pandas.DataFrame
        Every split: ``scheme, fold, repeat, train_size, role (train|test), row, batch_id``.
    warnings : pandas.DataFrame
        Warnings raised while fitting/predicting: ``model, scheme, fold, category, message``.
    space : ProcessSpace, optional
        The process space the comparison ran on (names, labels and units of its plots);
        None: the default space.
    """

    scores: pd.DataFrame
    predictions: pd.DataFrame
    folds: pd.DataFrame
    warnings: pd.DataFrame
    space: ProcessSpace | None = None

    @property
    def summary(self) -> pd.DataFrame:
        """Mean, SD and standard error of each metric across folds.

        Returns
        -------
        pandas.DataFrame
            ``model, scheme, train_size, metric, mean, sd, se, n_folds``; ``train_size`` is
            set for the learning curve only (NaN otherwise). ``se = sd / sqrt(n_folds)``
            ignores the correlation between CV folds, so it is optimistic.
        """
        s = self.scores.copy()
        s["train_size"] = s["train_size"].where(s["scheme"] == "learning_curve")
        keys = ["model", "scheme", "train_size", "metric"]
        out = (
            s.groupby(keys, dropna=False, sort=False)["value"]
            .agg(mean="mean", sd="std", n_folds="count")
            .reset_index()
        )
        out["se"] = out["sd"] / np.sqrt(out["n_folds"])
        return out[[*keys, "mean", "sd", "se", "n_folds"]]

    def table(self, scheme: str | None = None) -> pd.DataFrame:
        """Wide table of fold-mean metrics: one row per model, one column per metric.

        Parameters
        ----------
        scheme : str, optional
            Scheme to show; default the first scored.

        Returns
        -------
        pandas.DataFrame
            Means across folds.
        """
        scheme = scheme or str(self.scores["scheme"].iloc[0])
        s = self.summary
        s = s[(s["scheme"] == scheme) & s["train_size"].isna()]
        order = list(dict.fromkeys(s["metric"]))
        return s.pivot(index="model", columns="metric", values="mean")[order]


def compare(
    models: Mapping[str, YieldModel | Any],
    table: pd.DataFrame,
    *,
    cv: str | Sequence[str] | Any = "kfold",
    n_splits: int = 5,
    n_repeats: int = 1,
    test_size: float = 0.25,
    group_column: str | None = None,
    train_sizes: Sequence[int] | None = None,
    ci_probs: Sequence[float] = (0.5, 0.9),
    n_draws: int = 400,
    random_seed: int | None = None,
    n_jobs: int | None = None,
    space: ProcessSpace | str | Path | None = None,
) -> Comparison:
    """Fit and score every model on the same held-out folds.

    Parameters
    ----------
    models : mapping of str to estimator
        ``{name: model}``; each is cloned per fold. Models following the bayesbio protocol
        are fitted on the training table; other regressors on the space's factors. A model
        whose ``random_state``/``random_seed`` is None gets a per-fold seed derived from
        ``random_seed`` (the same for every model).
    table : pandas.DataFrame
        The (cleaned) batch table with the space's response.
    cv : str, sequence of str or splitter, default "kfold"
        Scheme(s); see :func:`make_folds`.
    n_splits, n_repeats, test_size, group_column, train_sizes
        Passed to :func:`make_folds` (defaults 5, 1, 0.25, site/scale, 10, 20, 40, ...).
    ci_probs : sequence of float, default (0.5, 0.9)
        Interval probabilities scored for coverage and width.
    n_draws : int, default 400
        Predictive draws per held-out batch for the CRPS.
    random_seed : int, optional
        Seed for folds, model seeds and predictive draws.
    n_jobs : int, optional
        Parallel jobs over (model, fold) pairs (joblib); None runs sequentially.
    space : ProcessSpace, path or None, optional
        The process space of ``table``. Default: the space the models were built with (their
        ``space`` argument), else the default space. Models built without a space are given
        this one (on their per-fold clones).

    Returns
    -------
    Comparison
        Scores, summary, out-of-fold predictions, folds, warnings and the space.

    Raises
    ------
    ValueError
        For an empty ``models``, an unknown scheme, a bad ``ci_probs`` or ``n_draws``, or
        models built for different process spaces.
    TypeError
        When a model lacks ``fit``/``predict``.
    """
    if not models:
        raise ValueError("models: give at least one {name: model}")
    for key, model in models.items():
        if not (hasattr(model, "fit") and hasattr(model, "predict")):
            raise TypeError(f"models[{key!r}] ({type(model).__name__}) has no fit/predict")
    for p in ci_probs:
        if not 0.0 < float(p) < 1.0:
            raise ValueError(f"ci_probs must lie strictly between 0 and 1; got {list(ci_probs)}")
    if isinstance(n_draws, bool) or int(n_draws) < 2:
        raise ValueError(f"n_draws must be an integer >= 2; got {n_draws!r}")
    sp, give_space = _resolve_comparison_space(models, space)
    data = schema.validate(table, space=sp).reset_index(drop=True)
    folds = make_folds(
        data,
        cv,
        n_splits=n_splits,
        n_repeats=n_repeats,
        test_size=test_size,
        group_column=group_column,
        train_sizes=train_sizes,
        random_seed=random_seed,
        space=sp,
    )
    rng = np.random.default_rng(random_seed)
    seeds = rng.integers(0, 2**31 - 1, size=len(folds))
    tasks = [
        (name, model, fold, int(seed))
        for fold, seed in zip(folds, seeds, strict=True)
        for name, model in models.items()
    ]
    results = Parallel(n_jobs=n_jobs)(
        delayed(_evaluate_fold)(
            name, model, data, fold, tuple(ci_probs), int(n_draws), seed, sp, give_space
        )
        for name, model, fold, seed in tasks
    )
    preds, scores, caught = [], [], []
    for (name, _, fold, _), (pred, score, warned) in zip(tasks, results, strict=True):
        preds.append(pred)
        scores.extend(score)
        for w in warned:
            caught.append(
                {
                    "model": name,
                    "scheme": fold.scheme,
                    "fold": fold.fold,
                    "category": w.category.__name__,
                    "message": str(w.message),
                }
            )
            # re-issue, saying where: the caller's filters decide (a ConvergenceWarning is
            # never swallowed)
            warnings.warn(
                f"model {name!r}, {fold.scheme} fold {fold.fold!r}: {w.message}",
                w.category,
                stacklevel=2,
            )
    warn_frame = pd.DataFrame(caught, columns=["model", "scheme", "fold", "category", "message"])
    return Comparison(
        scores=pd.DataFrame(scores),
        predictions=pd.concat(preds, ignore_index=True),
        folds=_folds_frame(folds, data, sp),
        warnings=warn_frame,
        space=sp,
    )


# ---- plots -----------------------------------------------------------------------------------
def _scheme(comparison: Comparison, scheme: str | None) -> str:
    schemes = list(dict.fromkeys(comparison.scores["scheme"]))
    if scheme is None:
        plain = [s for s in schemes if s != "learning_curve"]
        return (plain or schemes)[0]
    if scheme not in schemes:
        raise ValueError(f"scheme {scheme!r} not in this comparison; it has {schemes}")
    return scheme


def _axes(ax: Axes | None) -> Axes:
    if ax is None:
        _, ax = plt.subplots()
    return ax


def _space_of(comparison: Comparison) -> ProcessSpace:
    space = getattr(comparison, "space", None)
    return space if isinstance(space, ProcessSpace) else ProcessSpace.default()


def _metric_label(metric: str, unit: str = "g/L") -> str:
    in_unit = metric in ("rmse", "mae", "crps") or metric.startswith("width_")
    label = metric.upper() if metric in ("rmse", "mae", "crps") else metric.replace("_", " ")
    return f"{label} [{unit}]" if in_unit else label


def plot_scores(
    comparison: Comparison,
    metric: str = "rmse",
    *,
    scheme: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Metric by model: each fold as a point, with the mean ± standard error.

    Parameters
    ----------
    comparison : Comparison
        Result of :func:`compare`.
    metric : str, default "rmse"
        Metric to show.
    scheme : str, optional
        Scheme; default the first one that is not the learning curve.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.

    Returns
    -------
    matplotlib.axes.Axes
        The axes.
    """
    scheme = _scheme(comparison, scheme)
    s = comparison.scores
    s = s[(s["scheme"] == scheme) & (s["metric"] == metric)]
    if s.empty:
        raise ValueError(
            f"metric {metric!r} not scored; have {sorted(comparison.scores['metric'].unique())}"
        )
    ax = _axes(ax)
    rng = np.random.default_rng(0)  # jitter only
    names = list(dict.fromkeys(s["model"]))
    for i, name in enumerate(names):
        values = s.loc[s["model"] == name, "value"].to_numpy()
        ax.scatter(i + rng.uniform(-0.12, 0.12, values.size), values, alpha=0.5, s=14)
        se = values.std(ddof=1) / np.sqrt(values.size) if values.size > 1 else 0.0
        ax.errorbar(i + 0.25, values.mean(), yerr=se, fmt="o", color="black", capsize=3)
    if metric.startswith("coverage_"):
        nominal = int(metric.split("_")[1]) / 100
        ax.axhline(nominal, color="grey", ls="--", lw=1, label=f"nominal {nominal:g}")
    ax.scatter([], [], color="0.5", alpha=0.5, s=14, label="one fold")
    ax.errorbar([], [], yerr=[], fmt="o", color="black", capsize=3, label="mean +- 1 SE")
    ax.legend(fontsize="small", frameon=False)
    ax.set_xticks(range(len(names)), names, rotation=30 if len(names) > 4 else 0)
    ax.set_ylabel(_metric_label(metric, _space_of(comparison).response.unit))
    ax.set_title(f"{metric} by model ({scheme}, {s['fold'].nunique()} folds)")
    return ax


def plot_predicted_vs_observed(
    comparison: Comparison,
    *,
    scheme: str | None = None,
    models: Sequence[str] | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Out-of-fold predicted vs observed response, one colour per model.

    Parameters
    ----------
    comparison : Comparison
        Result of :func:`compare`.
    scheme : str, optional
        Scheme; default the first one that is not the learning curve.
    models : sequence of str, optional
        Models to show; default all.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.

    Returns
    -------
    matplotlib.axes.Axes
        The axes.
    """
    scheme = _scheme(comparison, scheme)
    p = comparison.predictions
    p = p[p["scheme"] == scheme]
    ax = _axes(ax)
    for name in models or list(dict.fromkeys(p["model"])):
        sub = p[p["model"] == name]
        ax.scatter(sub["observed"], sub["predicted"], s=12, alpha=0.6, label=name)
    lo = float(min(p["observed"].min(), p["predicted"].min()))
    hi = float(max(p["observed"].max(), p["predicted"].max()))
    ax.plot([lo, hi], [lo, hi], color="grey", lw=1, ls="--", label="predicted = observed")
    response = _space_of(comparison).response
    ax.set_xlabel(with_unit(f"Observed {response.noun}", response.unit))
    ax.set_ylabel(with_unit(f"Predicted {response.noun}", response.unit))
    ax.set_title(f"Out-of-fold predictions ({scheme})")
    ax.legend(fontsize="small")
    return ax


def plot_calibration(
    comparison: Comparison,
    *,
    scheme: str | None = None,
    models: Sequence[str] | None = None,
    band_prob: float = 0.9,
    ax: Axes | None = None,
) -> Axes:
    """Calibration of the predictive intervals: nominal vs empirical coverage out of fold.

    For every model with predictive intervals (``lower_<p>``/``upper_<p>`` columns of
    ``comparison.predictions``, one pair per ``ci_probs`` level of :func:`compare`), the share
    of held-out batches inside their central interval is plotted against the interval's
    nominal probability. A calibrated model lies on the diagonal, inside the grey band of
    binomial sampling noise for that many held-out batches; below it the intervals are too
    narrow (over-confident), above it too wide.

    Parameters
    ----------
    comparison : Comparison
        Result of :func:`compare` (more ``ci_probs`` levels give more points).
    scheme : str, optional
        Scheme; default the first one that is not the learning curve.
    models : sequence of str, optional
        Models to show; default all that have intervals.
    band_prob : float, default 0.9
        Probability of the binomial band around the diagonal.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.

    Returns
    -------
    matplotlib.axes.Axes
        Axes in %, one line per model, the diagonal and the band, each in the legend.

    Raises
    ------
    ValueError
        If no model of the comparison has predictive intervals.
    """
    from scipy.stats import norm

    band_prob = check_fraction("band_prob", band_prob)
    scheme = _scheme(comparison, scheme)
    p = comparison.predictions
    p = p[p["scheme"] == scheme]
    levels = sorted(
        int(c.split("_", 1)[1])
        for c in p.columns
        if c.startswith("lower_") and f"upper_{c.split('_', 1)[1]}" in p.columns
    )
    names = list(models or dict.fromkeys(p["model"]))
    rows = {}
    for name in names:
        sub = p[p["model"] == name]
        points = []
        for level in levels:
            lo, hi = sub[f"lower_{level}"].to_numpy(float), sub[f"upper_{level}"].to_numpy(float)
            ok = np.isfinite(lo) & np.isfinite(hi)
            if ok.any():
                y = sub["observed"].to_numpy(float)[ok]
                points.append((level, 100 * coverage(y, lo[ok], hi[ok]), int(ok.sum())))
        if points:
            rows[name] = points
    if not rows:
        raise ValueError(
            "no model of this comparison has predictive intervals (lower_/upper_ columns); "
            "compare a model with predict_interval, e.g. BayesianYieldModel"
        )
    ax = _axes(ax)
    n = min(pts[0][2] for pts in rows.values())
    grid = np.linspace(0.0, 1.0, 101)
    half = norm.ppf(0.5 + band_prob / 2) * np.sqrt(grid * (1 - grid) / max(n, 1))
    ax.fill_between(
        100 * grid,
        100 * np.clip(grid - half, 0, 1),
        100 * np.clip(grid + half, 0, 1),
        color="0.85",
        label=f"{100 * band_prob:g} % sampling band ({n} held-out batches)",
    )
    ax.plot(
        [0, 100], [0, 100], color="grey", ls="--", lw=1, label="calibrated: empirical = nominal"
    )
    for name, points in rows.items():
        x, y, _ = zip(*points, strict=True)
        ax.plot(x, y, "o-", ms=5, label=name)
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.set_xlabel("nominal probability of the central interval [%]")
    ax.set_ylabel("held-out batches inside it [%]")
    ax.set_title(f"Calibration of predictive intervals ({scheme}, out of fold)")
    ax.legend(fontsize="small", loc="upper left")
    return ax


def plot_residuals(
    comparison: Comparison, *, model: str | None = None, scheme: str | None = None
) -> Figure:
    """Out-of-fold residuals (observed - predicted) against each factor of the space.

    Parameters
    ----------
    comparison : Comparison
        Result of :func:`compare`.
    model : str, optional
        Model to show; default all, overlaid.
    scheme : str, optional
        Scheme; default the first one that is not the learning curve.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per factor, two per row (2 x 2 for the default space); labels and units
        from the comparison's space.
    """
    scheme = _scheme(comparison, scheme)
    space = _space_of(comparison)
    p = comparison.predictions
    p = p[p["scheme"] == scheme]
    names = [model] if model is not None else list(dict.fromkeys(p["model"]))
    k = space.k
    ncols = 1 if k == 1 else 2
    nrows = math.ceil(k / ncols)
    fig, axs = plt.subplots(
        nrows, ncols, figsize=(4.5 * ncols, 3 * nrows), sharey=True, layout="constrained"
    )
    flat = np.atleast_1d(axs).ravel()
    for ax, factor in zip(flat, space.factor_names, strict=False):
        for name in names:
            sub = p[p["model"] == name]
            ax.scatter(sub[factor], sub["observed"] - sub["predicted"], s=10, alpha=0.6, label=name)
        ax.axhline(0.0, color="grey", lw=1)
        ax.set_xlabel(space.axis_label(factor))
        ax.set_ylabel(f"Residual [{display_unit(space.response.unit)}]")
    for ax in flat[k:]:
        ax.set_visible(False)
    flat[0].legend()
    return fig


def plot_learning_curve(
    comparison: Comparison, metric: str = "rmse", *, ax: Axes | None = None
) -> Axes:
    """Held-out metric against training size (scheme ``"learning_curve"``), mean ± SE.

    Parameters
    ----------
    comparison : Comparison
        Result of :func:`compare` with ``cv`` including ``"learning_curve"``.
    metric : str, default "rmse"
        Metric to show.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.

    Returns
    -------
    matplotlib.axes.Axes
        The axes.
    """
    s = comparison.summary
    s = s[(s["scheme"] == "learning_curve") & (s["metric"] == metric)]
    if s.empty:
        raise ValueError("no learning-curve scores: run compare(..., cv='learning_curve')")
    ax = _axes(ax)
    for name in dict.fromkeys(s["model"]):
        sub = s[s["model"] == name].sort_values("train_size")
        ax.errorbar(
            sub["train_size"],
            sub["mean"],
            yerr=sub["se"].fillna(0.0),
            marker="o",
            capsize=3,
            label=name,
        )
    ax.set_xscale("log")
    ax.set_xlabel("Training batches")
    ax.set_ylabel(_metric_label(metric, _space_of(comparison).response.unit))
    ax.legend()
    return ax
