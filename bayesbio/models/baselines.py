"""LASSO and Random Forest yield baselines that follow the bayesbio model protocol.

Both take the batch table directly (``fit(table)``: the response column of the process space
is the target, its factors and the group columns are features), predict in the response's
unit and give predictive intervals and draws, so they can be scored on the same folds, with
the same coverage and CRPS metrics, as the Bayesian model (see ``docs/ARCHITECTURE.md``,
"The model protocol"). ``space=None`` is the default (demo) process space; any space with
``k >= 1`` factors works, and the fitted ``space_`` is what evaluate and recommend read.

Uncertainty
-----------
:class:`LassoYield`
    Point predictions from :class:`sklearn.linear_model.LassoCV` (penalty chosen by inner
    K-fold CV) on standardised factors with quadratic and interaction terms. Predictive
    uncertainty = coefficient uncertainty from ``n_bootstrap`` refits on bootstrap resamples at
    the chosen penalty (their spread, re-centred on the point prediction) plus Gaussian
    residual noise with ``sigma_ = sqrt(RSS / (n - df - 1))``, where ``df`` is the number of
    non-zero coefficients (the LASSO degrees of freedom, Zou, Hastie & Tibshirani 2007).
    Intervals are Gaussian with that total variance.
:class:`ForestYield`
    :class:`sklearn.ensemble.RandomForestRegressor`. Intervals add the empirical quantiles of
    the out-of-bag residuals to the forest mean (OOB prediction intervals, Zhang et al. 2019,
    The American Statistician 73:2). ``predict_draws(noise=True)`` adds resampled OOB
    residuals to the mean; ``noise=False`` returns per-tree predictions (the ensemble spread,
    a rough picture of uncertainty in the mean).

Groups
------
Neither baseline models between-group variation: ``kind="existing"`` (the default of
``predict``, ``predict_interval`` and ``predict_draws``) raises a ``ValueError`` for a group
label not seen in training, listing the known labels; ``kind="new_group"`` encodes unseen
labels with the reference encoding (all-zero one-hot, training-mean target encoding) and
keeps seen ones; ``kind="population"`` encodes every row's groups that way. No between-group
variance is added, so intervals for new groups are too narrow by that variance.

A table without the space's factor columns is refused with
:class:`~bayesbio.models._tables.SpaceMismatchError` (a ``SchemaError``) naming them.

Plain arrays
------------
For scikit-learn compatibility an array (or a DataFrame without any of the space's factor
columns) is accepted with an explicit ``y``: ``k`` columns are read as the space's ``k``
factors in order, any other width as generic numeric features without groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Self

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import Lasso, LassoCV
from sklearn.model_selection import KFold
from sklearn.utils.validation import check_is_fitted, validate_data

from bayesbio.checks import KINDS, check_choice, check_fraction, check_int, make_rng
from bayesbio.features import YieldFeatures
from bayesbio.models._tables import check_factor_columns, unknown_labels_error, validate
from bayesbio.space import ProcessSpace, resolve_space

__all__ = ["KINDS", "ForestYield", "LassoYield"]

# KINDS (re-exported from bayesbio.checks): valid ``kind`` values of the predict methods.
_POPULATION = "__population__"


def _check_ci_prob(ci_prob: float) -> float:
    if isinstance(ci_prob, bool) or not isinstance(ci_prob, int | float | np.floating):
        raise ValueError(f"ci_prob must be a number in (0, 1), got {ci_prob!r}")
    return check_fraction("ci_prob", ci_prob)


def _check_n_draws(n_draws: int) -> int:
    if not isinstance(n_draws, int | np.integer):
        raise ValueError(f"n_draws must be a positive integer, got {n_draws!r}")
    return check_int("n_draws", n_draws, minimum=1)


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


class _BaselineYield(RegressorMixin, BaseEstimator):
    """Table handling shared by the baselines (no ``__init__``: subclasses own their config)."""

    groups: Sequence[str] | None
    max_onehot: int
    random_state: int | None
    space: ProcessSpace | str | Path | None

    # ---- input handling ------------------------------------------------------------------
    def _fit_table(self, X: object, y: object) -> tuple[pd.DataFrame, np.ndarray]:
        name = type(self).__name__
        space = resolve_space(self.space)
        factors = list(space.factor_names)
        response = space.response.name
        if isinstance(X, pd.DataFrame) and any(p in X.columns for p in factors):
            check_factor_columns(X, space, who=f"{name}.fit")
            table = validate(X, space, require_response=y is None, groups=self.groups, min_rows=1)
            if y is None:
                y_arr = table[response].to_numpy(dtype=float)
            else:
                y_arr = np.asarray(y, dtype=float)
                if y_arr.ndim == 2 and y_arr.shape[1] == 1:
                    y_arr = y_arr.ravel()
                if y_arr.shape != (len(table),):
                    raise ValueError(
                        f"{name}.fit: y has shape {y_arr.shape}; expected ({len(table)},) to "
                        "match the rows of X"
                    )
                if not np.isfinite(y_arr).all():
                    raise ValueError(f"{name}.fit: y contains NaN or infinite values")
                table[response] = y_arr
            self.schema_input_ = True
            self.parameters_ = factors
            self.groups_ = space.group_columns(table, self.groups)
            self.n_features_in_ = len(self.parameters_) + len(self.groups_)
            self.feature_names_in_ = np.asarray([*self.parameters_, *self.groups_], dtype=object)
        else:
            if y is None:
                raise ValueError(
                    f"{name} requires y to be passed, but the target y is None. Pass y, or "
                    f"pass a batch table with the columns {factors} and '{response}'."
                )
            Xa, y_arr = validate_data(self, X, y, y_numeric=True)
            y_arr = np.asarray(y_arr, dtype=float)
            names = factors if Xa.shape[1] == space.k else [f"x{i}" for i in range(Xa.shape[1])]
            table = pd.DataFrame(np.asarray(Xa, dtype=float), columns=names)
            table[response] = y_arr
            self.schema_input_ = False
            self.parameters_ = names
            self.groups_ = []
        self.group_levels_ = {g: sorted(table[g].unique()) for g in self.groups_}
        self.space_ = space
        self.training_table_ = table
        return table, y_arr

    def _predict_table(
        self, X: object, kind: str, who: str = "predict"
    ) -> tuple[pd.DataFrame, pd.Index]:
        check_is_fitted(self, "training_table_")
        kind = check_choice("kind", kind, KINDS)
        if not self.schema_input_:
            given = X.index if isinstance(X, pd.DataFrame) else None
            if isinstance(X, pd.DataFrame) and set(self.parameters_) <= set(X.columns):
                X = X[list(self.parameters_)].to_numpy(dtype=float)  # a batch table: its factors
            elif isinstance(X, pd.DataFrame) and any(
                not pd.api.types.is_numeric_dtype(t) for t in X.dtypes
            ):
                raise TypeError(
                    f"{type(self).__name__}.{who}: fitted on a numeric array of "
                    f"{len(self.parameters_)} column(s), given a table with text columns "
                    f"{[c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]}; "
                    "pass the same numeric columns, or fit on the batch table itself "
                    "(fit(table)) to predict from tables"
                )
            Xa = validate_data(self, X, reset=False)
            table = pd.DataFrame(np.asarray(Xa, dtype=float), columns=self.parameters_)
            return table, given if given is not None else table.index
        space = self.space_
        if not isinstance(X, pd.DataFrame):
            arr = np.asarray(X, dtype=float)
            if self.groups_ or arr.ndim != 2 or arr.shape[1] != space.k:
                raise TypeError(
                    f"{type(self).__name__} was fitted on a batch table; pass a DataFrame with "
                    f"columns {[*self.parameters_, *self.groups_]}"
                )
            X = pd.DataFrame(arr, columns=list(space.factor_names))
        check_factor_columns(X, space, who=f"{type(self).__name__}.{who}")
        table = validate(X, space, require_response=False, groups=self.groups_)
        return self._apply_kind(table, kind), X.index

    def _apply_kind(self, table: pd.DataFrame, kind: str) -> pd.DataFrame:
        for g in self.groups_:
            if kind == "population":
                table[g] = _POPULATION
            elif kind == "existing":
                known = self.group_levels_[g]
                unseen = set(table[g]) - set(known)
                if unseen:
                    raise unknown_labels_error(g, unseen, known)
        return table

    def _design(self, X: object, kind: str, who: str = "predict") -> tuple[np.ndarray, pd.Index]:
        table, index = self._predict_table(X, kind, who)
        return self.features_.transform(table).to_numpy(dtype=float), index

    def _features(self, rng: np.random.Generator, **options: object) -> YieldFeatures:
        return YieldFeatures(
            parameters=self.parameters_,
            groups=self.groups_,
            space=self.space_,
            max_onehot=self.max_onehot,
            random_state=_seed(rng),
            **options,
        )

    @staticmethod
    def _min_rows(name: str, n: int, need: int) -> None:
        if n < need:
            raise ValueError(f"{name} needs at least {need} batches to fit; got n_samples={n}")


class LassoYield(_BaselineYield):
    """LASSO on standardised factors, quadratic and interaction terms and group encodings.

    Parameters
    ----------
    quadratic : bool, default True
        Include squared factor terms.
    interactions : bool, default True
        Include pairwise factor interactions.
    groups : sequence of str, optional
        Group columns used as features. Default: the space's groups present; ``()`` for
        none.
    max_onehot : int, default 8
        Groups with more levels are target encoded (cross-fitted), others one-hot.
    cv : int, default 5
        Folds of the inner CV that picks the penalty (capped at the number of batches).
    n_alphas : int, default 100
        Number of penalties on the LassoCV path.
    max_iter : int, default 50000
        Coordinate-descent iterations.
    n_bootstrap : int, default 100
        Bootstrap refits (at the chosen penalty) for coefficient uncertainty; 0 for none.
    random_state : int, optional
        Seed for the inner CV folds, the target encoder and the bootstrap.
    space : ProcessSpace, path or None, optional
        The process space (factors, response, groups); None: the default space. Stored as
        given; the resolved space is ``space_``.

    Attributes
    ----------
    features_ : bayesbio.features.YieldFeatures
        The fitted design (its ``scaler_`` holds centre and scale in domain units).
    lasso_ : sklearn.linear_model.LassoCV
        The fitted LASSO.
    coef_ : pandas.Series
        Coefficients per design column (per 1 SD of standardised factors).
    intercept_ : float
        Intercept, in the response's unit.
    alpha_ : float
        Penalty chosen by inner CV.
    n_iter_ : int
        Coordinate-descent iterations of the final LASSO fit.
    sigma_ : float
        Residual standard deviation in the response's unit (degrees-of-freedom corrected).
    boot_coef_, boot_intercept_ : ndarray
        Bootstrap coefficients ``(n_bootstrap, n_terms)`` and intercepts.
    training_table_ : pandas.DataFrame
        The validated training table.
    space_ : ProcessSpace
        The resolved process space.

    Examples
    --------
    >>> model = LassoYield(random_state=0).fit(table)  # doctest: +SKIP
    >>> model.predict_interval(table, ci_prob=0.9)  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        quadratic: bool = True,
        interactions: bool = True,
        groups: Sequence[str] | None = None,
        max_onehot: int = 8,
        cv: int = 5,
        n_alphas: int = 100,
        max_iter: int = 50_000,
        n_bootstrap: int = 100,
        random_state: int | None = None,
        space: ProcessSpace | str | Path | None = None,
    ):
        self.quadratic = quadratic
        self.interactions = interactions
        self.groups = groups
        self.max_onehot = max_onehot
        self.cv = cv
        self.n_alphas = n_alphas
        self.max_iter = max_iter
        self.n_bootstrap = n_bootstrap
        self.random_state = random_state
        self.space = space

    def fit(self, X: pd.DataFrame, y: object = None) -> Self:
        """Fit the design, choose the penalty by inner CV and bootstrap the coefficients.

        Parameters
        ----------
        X : pandas.DataFrame
            The batch table (the space's factors, group columns, and its response unless
            ``y`` is given).
        y : array-like, optional
            Response values; default the table's response column.

        Returns
        -------
        LassoYield
            The fitted model.
        """
        table, y_arr = self._fit_table(X, y)
        n = len(table)
        self._min_rows("LassoYield", n, 3)
        rng = make_rng(self.random_state, "random_state")
        self.features_ = self._features(
            rng, quadratic=self.quadratic, interactions=self.interactions
        )
        design = self.features_.fit_transform(table, y_arr)
        F = design.to_numpy(dtype=float)
        folds = KFold(n_splits=max(2, min(self.cv, n)), shuffle=True, random_state=_seed(rng))
        self.lasso_ = LassoCV(alphas=self.n_alphas, cv=folds, max_iter=self.max_iter).fit(F, y_arr)
        self.coef_ = pd.Series(self.lasso_.coef_, index=design.columns, name="coef")
        self.intercept_ = float(self.lasso_.intercept_)
        self.alpha_ = float(self.lasso_.alpha_)
        self.n_iter_ = int(self.lasso_.n_iter_)
        resid = y_arr - self.lasso_.predict(F)
        df = int(np.count_nonzero(self.lasso_.coef_))
        self.sigma_ = float(np.sqrt(np.sum(resid**2) / max(n - df - 1, 1)))
        B = int(self.n_bootstrap)
        self.boot_coef_ = np.zeros((B, F.shape[1]))
        self.boot_intercept_ = np.zeros(B)
        for b in range(B):
            idx = rng.integers(0, n, n)
            fit = Lasso(alpha=self.alpha_, max_iter=self.max_iter).fit(F[idx], y_arr[idx])
            self.boot_coef_[b] = fit.coef_
            self.boot_intercept_[b] = fit.intercept_
        return self

    def _boot_deviation(self, F: np.ndarray) -> np.ndarray:
        """Bootstrap predictions minus their mean, shape ``(n_bootstrap, n_rows)``."""
        preds = self.boot_intercept_[:, None] + self.boot_coef_ @ F.T
        return preds - preds.mean(axis=0)

    def predict(self, X: pd.DataFrame, *, kind: str = "existing") -> np.ndarray:
        """Mean predicted response (g/L for the default space).

        Parameters
        ----------
        X : pandas.DataFrame
            Setpoints: the space's factors and the fitted group columns.
        kind : {"existing", "new_group", "population"}, default "existing"
            How group labels are treated (see module notes); an unseen label with
            ``"existing"`` raises a ValueError listing the known labels.

        Returns
        -------
        ndarray
            One prediction per row.
        """
        F, _ = self._design(X, kind)
        return self.lasso_.predict(F)

    def predict_interval(
        self, X: pd.DataFrame, ci_prob: float = 0.9, *, kind: str = "existing"
    ) -> pd.DataFrame:
        """Central predictive interval for a new batch (Gaussian, bootstrap + residual noise).

        Parameters
        ----------
        X : pandas.DataFrame
            Setpoints.
        ci_prob : float, default 0.9
            Interval probability.
        kind : {"existing", "new_group", "population"}, default "existing"
            How group labels are treated (see module notes).

        Returns
        -------
        pandas.DataFrame
            Columns ``mean, lower, upper`` in the response's unit, indexed like ``X``.
        """
        ci_prob = _check_ci_prob(ci_prob)
        F, index = self._design(X, kind, "predict_interval")
        mean = self.lasso_.predict(F)
        var = np.full(len(F), self.sigma_**2)
        if len(self.boot_coef_) > 1:
            var = var + self._boot_deviation(F).var(axis=0, ddof=1)
        half = stats.norm.ppf(0.5 + ci_prob / 2) * np.sqrt(var)
        return pd.DataFrame({"mean": mean, "lower": mean - half, "upper": mean + half}, index=index)

    def predict_draws(
        self,
        X: pd.DataFrame,
        *,
        n_draws: int = 1000,
        noise: bool = True,
        kind: str = "existing",
        random_seed: int | None = None,
    ) -> np.ndarray:
        """Predictive draws: bootstrap coefficient draws plus (optionally) residual noise.

        Parameters
        ----------
        X : pandas.DataFrame
            Setpoints.
        n_draws : int, default 1000
            Number of draws.
        noise : bool, default True
            Add new-batch noise ``N(0, sigma_)``.
        kind : {"existing", "new_group", "population"}, default "existing"
            How group labels are treated (see module notes).
        random_seed : int, optional
            Seed; the same seed gives the same draws.

        Returns
        -------
        ndarray
            Shape ``(n_draws, len(X))``, in the response's unit.
        """
        n_draws = _check_n_draws(n_draws)
        F, _ = self._design(X, kind, "predict_draws")
        rng = make_rng(random_seed)
        draws = np.tile(self.lasso_.predict(F), (n_draws, 1))
        if len(self.boot_coef_) > 0:
            draws += self._boot_deviation(F)[rng.integers(0, len(self.boot_coef_), n_draws)]
        if noise:
            draws += rng.normal(0.0, self.sigma_, size=draws.shape)
        return draws


class ForestYield(_BaselineYield):
    """Random Forest yield model with out-of-bag prediction intervals.

    Parameters
    ----------
    n_estimators : int, default 300
        Number of trees.
    min_samples_leaf : int, default 2
        Minimum batches per leaf.
    max_features : float, int or str, default 1.0
        Features considered per split (as in scikit-learn).
    groups : sequence of str, optional
        Group columns used as features. Default: the space's groups present; ``()`` for
        none.
    max_onehot : int, default 8
        Groups with more levels are target encoded (cross-fitted), others one-hot.
    n_jobs : int, optional
        Parallel jobs for the forest.
    random_state : int, optional
        Seed for bootstrap samples, split features and the target encoder.
    space : ProcessSpace, path or None, optional
        The process space (factors, response, groups); None: the default space. Stored as
        given; the resolved space is ``space_``.

    Attributes
    ----------
    features_ : bayesbio.features.YieldFeatures
        The fitted design (parameters unscaled, groups encoded).
    forest_ : sklearn.ensemble.RandomForestRegressor
        The fitted forest.
    oob_prediction_ : ndarray
        Out-of-bag prediction per training batch (NaN if a batch was in every bootstrap).
    oob_residuals_ : ndarray
        Observed minus OOB prediction (response unit) for batches with an OOB prediction.
    feature_importances_ : pandas.Series
        Impurity importances per design column.
    training_table_ : pandas.DataFrame
        The validated training table.
    space_ : ProcessSpace
        The resolved process space.
    """

    def __init__(
        self,
        *,
        n_estimators: int = 300,
        min_samples_leaf: int = 2,
        max_features: float | int | str = 1.0,
        groups: Sequence[str] | None = None,
        max_onehot: int = 8,
        n_jobs: int | None = None,
        random_state: int | None = None,
        space: ProcessSpace | str | Path | None = None,
    ):
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.groups = groups
        self.max_onehot = max_onehot
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.space = space

    def fit(self, X: pd.DataFrame, y: object = None) -> Self:
        """Fit the forest and compute out-of-bag residuals.

        Parameters
        ----------
        X : pandas.DataFrame
            The batch table (the space's factors, group columns, and its response unless
            ``y`` is given).
        y : array-like, optional
            Response values; default the table's response column.

        Returns
        -------
        ForestYield
            The fitted model.
        """
        table, y_arr = self._fit_table(X, y)
        n = len(table)
        self._min_rows("ForestYield", n, 2)
        rng = make_rng(self.random_state, "random_state")
        self.features_ = self._features(rng, standardize=False, quadratic=False, interactions=False)
        design = self.features_.fit_transform(table, y_arr)
        F = design.to_numpy(dtype=float)
        self.forest_ = RandomForestRegressor(
            n_estimators=self.n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
            bootstrap=True,
            n_jobs=self.n_jobs,
            random_state=_seed(rng),
        ).fit(F, y_arr)
        # OOB by hand: sklearn's oob_score warns when a batch is in every bootstrap sample.
        per_tree = self._per_tree(F)
        oob = np.ones_like(per_tree, dtype=bool)
        for t, samples in enumerate(self.forest_.estimators_samples_):
            oob[t, samples] = False
        counts = oob.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            pred = np.where(counts > 0, (per_tree * oob).sum(axis=0) / counts, np.nan)
        self.oob_prediction_ = pred
        ok = counts > 0
        resid = y_arr[ok] - pred[ok]
        if resid.size == 0:
            resid = y_arr - per_tree.mean(axis=0)
        self.oob_residuals_ = resid
        self.feature_importances_ = pd.Series(
            self.forest_.feature_importances_, index=design.columns, name="importance"
        )
        return self

    def _per_tree(self, F: np.ndarray) -> np.ndarray:
        # trees split on float32; check_input=False skips per-tree validation (the forest's
        # own predict spends most of its time on it for small inputs)
        F32 = np.ascontiguousarray(F, dtype=np.float32)
        return np.stack([t.predict(F32, check_input=False) for t in self.forest_.estimators_])

    def predict(self, X: pd.DataFrame, *, kind: str = "existing") -> np.ndarray:
        """Mean predicted response (average over trees; g/L for the default space).

        Parameters
        ----------
        X : pandas.DataFrame
            Setpoints: the space's factors and the fitted group columns.
        kind : {"existing", "new_group", "population"}, default "existing"
            How group labels are treated (see module notes); an unseen label with
            ``"existing"`` raises a ValueError listing the known labels.

        Returns
        -------
        ndarray
            One prediction per row.
        """
        F, _ = self._design(X, kind)
        return self._per_tree(F).mean(axis=0)

    def predict_interval(
        self, X: pd.DataFrame, ci_prob: float = 0.9, *, kind: str = "existing"
    ) -> pd.DataFrame:
        """Out-of-bag prediction interval: forest mean plus OOB residual quantiles.

        Parameters
        ----------
        X : pandas.DataFrame
            Setpoints.
        ci_prob : float, default 0.9
            Interval probability.
        kind : {"existing", "new_group", "population"}, default "existing"
            How group labels are treated (see module notes).

        Returns
        -------
        pandas.DataFrame
            Columns ``mean, lower, upper`` in the response's unit, indexed like ``X``.
        """
        ci_prob = _check_ci_prob(ci_prob)
        F, index = self._design(X, kind, "predict_interval")
        mean = self._per_tree(F).mean(axis=0)
        lo, hi = np.quantile(self.oob_residuals_, [0.5 - ci_prob / 2, 0.5 + ci_prob / 2])
        return pd.DataFrame({"mean": mean, "lower": mean + lo, "upper": mean + hi}, index=index)

    def predict_draws(
        self,
        X: pd.DataFrame,
        *,
        n_draws: int = 1000,
        noise: bool = True,
        kind: str = "existing",
        random_seed: int | None = None,
    ) -> np.ndarray:
        """Predictive draws: mean + resampled OOB residuals, or per-tree predictions.

        Parameters
        ----------
        X : pandas.DataFrame
            Setpoints.
        n_draws : int, default 1000
            Number of draws.
        noise : bool, default True
            True: forest mean plus OOB residuals resampled independently per row (a new
            batch). False: predictions of randomly chosen trees (spread of the mean).
        kind : {"existing", "new_group", "population"}, default "existing"
            How group labels are treated (see module notes).
        random_seed : int, optional
            Seed; the same seed gives the same draws.

        Returns
        -------
        ndarray
            Shape ``(n_draws, len(X))``, in the response's unit.
        """
        n_draws = _check_n_draws(n_draws)
        F, _ = self._design(X, kind, "predict_draws")
        rng = make_rng(random_seed)
        per_tree = self._per_tree(F)
        if noise:
            residuals = rng.choice(self.oob_residuals_, size=(n_draws, len(F)))
            return per_tree.mean(axis=0) + residuals
        return per_tree[rng.integers(0, len(per_tree), n_draws)]
