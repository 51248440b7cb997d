"""scikit-learn transformers over the batch table.

The pieces compose into :class:`YieldFeatures`, the design the LASSO and Random Forest
baselines use:

* :class:`DomainScaler` standardises the process factors and remembers each centre and
  scale in domain units, so coefficients can be mapped back (``inverse_transform``).
* :class:`PolynomialTerms` adds quadratic and pairwise interaction terms (none for a single
  factor).
* :class:`GroupEncoder` encodes group columns (scale, site, campaign): one-hot when a column
  has few levels, cross-fitted target encoding (:class:`sklearn.preprocessing.TargetEncoder`)
  when it has many, so the encoding of a training batch never uses that batch's own response.

Factor names, units, the response and the group columns come from a
:class:`~bayesbio.space.ProcessSpace` (constructor argument ``space``; None: the default demo
process; the fitted one is ``space_``), for any number of factors k >= 1.

All transformers take and return :class:`pandas.DataFrame` objects, work inside
:class:`sklearn.pipeline.Pipeline` and implement ``get_feature_names_out``. Group levels not
seen in training fall back to the reference encoding: all zeros for one-hot columns, the
training mean response for target-encoded columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from pathlib import Path
from typing import Self

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.model_selection import KFold
from sklearn.preprocessing import OneHotEncoder, TargetEncoder
from sklearn.utils.validation import check_is_fitted

from bayesbio import schema
from bayesbio.space import ProcessSpace, resolve_space

__all__ = ["DomainScaler", "GroupEncoder", "PolynomialTerms", "YieldFeatures"]


def _require_frame(X: object, who: str) -> pd.DataFrame:
    if not isinstance(X, pd.DataFrame):
        raise TypeError(
            f"{who} expects a pandas DataFrame (the batch table); got {type(X).__name__}"
        )
    return X


def _require_columns(X: pd.DataFrame, columns: Sequence[str], who: str) -> None:
    missing = [c for c in columns if c not in X.columns]
    if missing:
        raise schema.SchemaError(
            f"{who}: missing column(s) {missing}; the table has {list(X.columns)}"
        )


def _default_parameters(
    X: pd.DataFrame, space: ProcessSpace, groups: Sequence[str] = ()
) -> list[str]:
    """Return the space's factors present, else the numeric non-response, non-group columns."""
    present = [p for p in space.factor_names if p in X.columns]
    if present:
        return present
    return [
        c
        for c in X.columns
        if c not in (space.response.name, *groups)
        and pd.api.types.is_numeric_dtype(X[c])
        and not pd.api.types.is_bool_dtype(X[c])
    ]


class DomainScaler(TransformerMixin, BaseEstimator):
    """Standardise process factors, remembering centre and scale in domain units.

    Parameters
    ----------
    columns : sequence of str, optional
        Columns to standardise. Default: the space's factors present in the table (or, when
        none is present, every numeric column except the response).
    space : ProcessSpace, path or None, optional
        The process space (None: the default demo process).

    Attributes
    ----------
    space_ : ProcessSpace
        The resolved process space.
    columns_ : list of str
        Standardised columns, in output order.
    center_ : pandas.Series
        Mean of each column in the training table, domain units.
    scale_ : pandas.Series
        Standard deviation (ddof=1) of each column, domain units; 1.0 for constant columns.
    units_ : dict of str to str
        Domain unit of each column (``""`` when unknown).

    Notes
    -----
    The output keeps the column names; its ``attrs["units"]`` records, per column, that the
    values are in standard deviations and what one SD is in domain units.
    """

    def __init__(
        self,
        columns: Sequence[str] | None = None,
        *,
        space: ProcessSpace | str | Path | None = None,
    ):
        self.columns = columns
        self.space = space

    def fit(self, X: pd.DataFrame, y: object = None) -> Self:
        """Learn centre and scale of each column.

        Parameters
        ----------
        X : pandas.DataFrame
            The batch table.
        y : ignored

        Returns
        -------
        DomainScaler
            The fitted transformer.
        """
        X = _require_frame(X, "DomainScaler")
        sp = resolve_space(self.space)
        cols = list(self.columns) if self.columns is not None else _default_parameters(X, sp)
        if not cols:
            raise ValueError("DomainScaler: no numeric parameter columns to standardise")
        _require_columns(X, cols, "DomainScaler")
        values = X[cols].astype("float64")
        scale = values.std(ddof=1) if len(values) > 1 else pd.Series(1.0, index=cols)
        scale = scale.fillna(1.0).where(scale > 1e-12, 1.0)
        self.space_ = sp
        self.columns_ = cols
        self.center_ = values.mean()
        self.scale_ = scale
        self.units_ = {c: sp.units.get(c, "") for c in cols}
        self.n_features_in_ = len(cols)
        self.feature_names_in_ = np.asarray(cols, dtype=object)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Return ``(x - center_) / scale_`` for each column, indexed like ``X``.

        Parameters
        ----------
        X : pandas.DataFrame
            A table with the fitted columns.

        Returns
        -------
        pandas.DataFrame
            Standardised columns; ``attrs["units"]`` says what one unit is.
        """
        check_is_fitted(self)
        X = _require_frame(X, "DomainScaler")
        _require_columns(X, self.columns_, "DomainScaler")
        out = (X[self.columns_].astype("float64") - self.center_) / self.scale_
        out.attrs["units"] = {
            c: f"SD (1 SD = {self.scale_[c]:.4g} {self.units_[c]}, centre "
            f"{self.center_[c]:.4g} {self.units_[c]})".replace("  ", " ")
            for c in self.columns_
        }
        return out

    def inverse_transform(self, X: pd.DataFrame | np.ndarray) -> pd.DataFrame:
        """Map standardised values back to domain units.

        Parameters
        ----------
        X : pandas.DataFrame or ndarray
            Standardised values with the fitted columns (in order, for arrays).

        Returns
        -------
        pandas.DataFrame
            Values in domain units.
        """
        check_is_fitted(self)
        if not isinstance(X, pd.DataFrame):
            X = pd.DataFrame(np.asarray(X, dtype=float), columns=self.columns_)
        _require_columns(X, self.columns_, "DomainScaler.inverse_transform")
        out = X[self.columns_] * self.scale_ + self.center_
        out.attrs["units"] = dict(self.units_)
        return out

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """Return the standardised column names.

        Parameters
        ----------
        input_features : ignored

        Returns
        -------
        ndarray of str
            Output feature names.
        """
        check_is_fitted(self)
        return np.asarray(self.columns_, dtype=object)


class PolynomialTerms(TransformerMixin, BaseEstimator):
    """Add quadratic (``p^2``) and pairwise interaction (``p*q``) terms to numeric columns.

    Works for any number of columns; a single column gets no interaction terms.

    Parameters
    ----------
    quadratic : bool, default True
        Add the square of each column.
    interactions : bool, default True
        Add the product of each pair of columns.

    Attributes
    ----------
    columns_ : list of str
        Input columns (linear terms).
    terms_ : list of tuple of str
        Each output term as the tuple of columns multiplied, e.g. ``("ph", "ph")``.
    """

    def __init__(self, *, quadratic: bool = True, interactions: bool = True):
        self.quadratic = quadratic
        self.interactions = interactions

    def fit(self, X: pd.DataFrame, y: object = None) -> Self:
        """Record the input columns and the terms to build.

        Parameters
        ----------
        X : pandas.DataFrame
            Numeric columns (usually standardised parameters).
        y : ignored

        Returns
        -------
        PolynomialTerms
            The fitted transformer.
        """
        X = _require_frame(X, "PolynomialTerms")
        cols = list(X.columns)
        terms: list[tuple[str, ...]] = [(c,) for c in cols]
        if self.quadratic:
            terms += [(c, c) for c in cols]
        if self.interactions:
            terms += list(combinations(cols, 2))
        self.columns_ = cols
        self.terms_ = terms
        self.n_features_in_ = len(cols)
        self.feature_names_in_ = np.asarray(cols, dtype=object)
        return self

    @staticmethod
    def _name(term: tuple[str, ...]) -> str:
        if len(term) == 1:
            return term[0]
        if term[0] == term[1]:
            return f"{term[0]}^2"
        return f"{term[0]}*{term[1]}"

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Return linear, quadratic and interaction terms.

        Parameters
        ----------
        X : pandas.DataFrame
            The fitted columns.

        Returns
        -------
        pandas.DataFrame
            One column per term, indexed like ``X``.
        """
        check_is_fitted(self)
        X = _require_frame(X, "PolynomialTerms")
        _require_columns(X, self.columns_, "PolynomialTerms")
        values = {
            self._name(t): np.prod([X[c].to_numpy(dtype=float) for c in t], axis=0)
            for t in self.terms_
        }
        out = pd.DataFrame(values, index=X.index)
        out.attrs = dict(X.attrs)
        return out

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """Return the term names (``p``, ``p^2``, ``p*q``).

        Parameters
        ----------
        input_features : ignored

        Returns
        -------
        ndarray of str
            Output feature names.
        """
        check_is_fitted(self)
        return np.asarray([self._name(t) for t in self.terms_], dtype=object)


class GroupEncoder(TransformerMixin, BaseEstimator):
    """Encode group columns: one-hot for few levels, cross-fitted target encoding for many.

    Parameters
    ----------
    columns : sequence of str, optional
        Group columns. Default: the space's group columns present.
    space : ProcessSpace, path or None, optional
        The process space: its groups and response (the default target).
    max_onehot : int, default 8
        Columns with at most this many levels are one-hot encoded; others are target
        encoded (needs ``y``).
    cv : int, default 5
        Folds of the target encoder's internal cross fitting (capped at the number of rows).
    random_state : int, optional
        Seed of the cross-fitting fold assignment.

    Attributes
    ----------
    space_ : ProcessSpace
        The resolved process space.
    columns_ : list of str
        Encoded columns.
    encoding_ : dict of str to str
        ``"onehot"`` or ``"target"`` per column.
    encoders_ : dict of str to estimator
        The fitted encoder per column.

    Notes
    -----
    ``fit_transform`` returns the cross-fitted target encoding (each training row encoded by
    a model that did not see its response); ``transform`` uses the encoder fitted on all rows.
    Unseen levels map to zeros (one-hot) or the training mean response (target encoding).
    """

    def __init__(
        self,
        columns: Sequence[str] | None = None,
        *,
        space: ProcessSpace | str | Path | None = None,
        max_onehot: int = 8,
        cv: int = 5,
        random_state: int | None = None,
    ):
        self.columns = columns
        self.space = space
        self.max_onehot = max_onehot
        self.cv = cv
        self.random_state = random_state

    def _plan(self, X: pd.DataFrame, y: object) -> tuple[list[str], np.ndarray | None]:
        X = _require_frame(X, "GroupEncoder")
        sp = resolve_space(self.space)
        cols = sp.group_columns(X, self.columns)
        if self.columns is not None:
            _require_columns(X, list(self.columns), "GroupEncoder")
        if y is None and sp.response.name in X.columns:
            y = X[sp.response.name]
        y_arr = None if y is None else np.asarray(y, dtype=float).ravel()
        self.space_ = sp
        self.columns_ = cols
        self.encoding_ = {}
        for c in cols:
            many = X[c].nunique() > self.max_onehot
            if many and y_arr is None:
                raise ValueError(
                    f"GroupEncoder: column '{c}' has {X[c].nunique()} levels (> max_onehot="
                    f"{self.max_onehot}) and needs y for target encoding"
                )
            self.encoding_[c] = "target" if many else "onehot"
        self.n_features_in_ = len(cols)
        self.feature_names_in_ = np.asarray(cols, dtype=object)
        return cols, y_arr

    def _target_encoder(self, n: int) -> TargetEncoder:
        folds = KFold(
            n_splits=max(2, min(self.cv, n)), shuffle=True, random_state=self.random_state
        )
        return TargetEncoder(target_type="continuous", cv=folds)

    def fit(self, X: pd.DataFrame, y: object = None) -> Self:
        """Fit one encoder per group column.

        Parameters
        ----------
        X : pandas.DataFrame
            The batch table.
        y : array-like, optional
            Target for target encoding; default the table's response column.

        Returns
        -------
        GroupEncoder
            The fitted transformer.
        """
        self.fit_transform(X, y)
        return self

    def fit_transform(
        self, X: pd.DataFrame, y: object = None, **fit_params: object
    ) -> pd.DataFrame:
        """Fit and return the encoding; target-encoded columns are cross-fitted.

        Parameters
        ----------
        X : pandas.DataFrame
            The batch table.
        y : array-like, optional
            Target; default the table's response column.
        **fit_params : ignored

        Returns
        -------
        pandas.DataFrame
            Encoded columns, indexed like ``X``.
        """
        cols, y_arr = self._plan(X, y)
        self.encoders_ = {}
        parts = []
        for c in cols:
            data = X[[c]].astype(str)
            if self.encoding_[c] == "onehot":
                enc = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
                values = enc.fit_transform(data)
            else:
                enc = self._target_encoder(len(X))
                values = enc.fit_transform(data, y_arr)
            self.encoders_[c] = enc
            parts.append(values)
        return self._frame(parts, X.index)

    def _frame(self, parts: list[np.ndarray], index: pd.Index) -> pd.DataFrame:
        names = self.get_feature_names_out()
        data = np.hstack(parts) if parts else np.empty((len(index), 0))
        return pd.DataFrame(data, columns=list(names), index=index)

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Encode group columns with the encoders fitted on all training rows.

        Parameters
        ----------
        X : pandas.DataFrame
            A table with the fitted group columns.

        Returns
        -------
        pandas.DataFrame
            Encoded columns, indexed like ``X``.
        """
        check_is_fitted(self, "encoders_")
        X = _require_frame(X, "GroupEncoder")
        _require_columns(X, self.columns_, "GroupEncoder")
        parts = []
        for c in self.columns_:
            enc = self.encoders_[c]
            if self.encoding_[c] == "onehot":
                # same result as OneHotEncoder(handle_unknown="ignore").transform, without its
                # per-call validation (predict is called in loops by the optimisers)
                labels = X[c].astype(str).to_numpy(dtype=object)
                parts.append((labels[:, None] == enc.categories_[0][None, :]).astype(float))
            else:
                parts.append(enc.transform(X[[c]].astype(str)))
        return self._frame(parts, X.index)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """Return ``column=level`` for one-hot columns and ``column~target`` otherwise.

        Parameters
        ----------
        input_features : ignored

        Returns
        -------
        ndarray of str
            Output feature names.
        """
        check_is_fitted(self, "encoders_")
        names: list[str] = []
        for c in self.columns_:
            enc = self.encoders_[c]
            if self.encoding_[c] == "onehot":
                names += [f"{c}={level}" for level in enc.categories_[0]]
            else:
                names.append(f"{c}~target")
        return np.asarray(names, dtype=object)


class YieldFeatures(TransformerMixin, BaseEstimator):
    """The baseline design: standardised factors, polynomial terms and group encodings.

    Parameters
    ----------
    parameters : sequence of str, optional
        Numeric columns. Default: the space's factors present (or every numeric column
        except the response and the groups when none is present).
    groups : sequence of str, optional
        Group columns. Default: the space's group columns present; ``()`` for none.
    space : ProcessSpace, path or None, optional
        The process space (None: the default demo process).
    standardize : bool, default True
        Standardise factors (:class:`DomainScaler`) before building terms.
    quadratic : bool, default True
        Add squared terms.
    interactions : bool, default True
        Add pairwise interaction terms.
    max_onehot : int, default 8
        See :class:`GroupEncoder`.
    random_state : int, optional
        Seed of the target encoder's cross fitting.

    Attributes
    ----------
    space_ : ProcessSpace
        The resolved process space.
    scaler_ : DomainScaler or None
        Centre/scale of each parameter in domain units (None when ``standardize=False``).
    poly_ : PolynomialTerms
        The polynomial term builder.
    groups_ : GroupEncoder
        The group encoder.
    parameters_ : list of str
        Numeric columns used.
    """

    def __init__(
        self,
        *,
        parameters: Sequence[str] | None = None,
        groups: Sequence[str] | None = None,
        space: ProcessSpace | str | Path | None = None,
        standardize: bool = True,
        quadratic: bool = True,
        interactions: bool = True,
        max_onehot: int = 8,
        random_state: int | None = None,
    ):
        self.parameters = parameters
        self.groups = groups
        self.space = space
        self.standardize = standardize
        self.quadratic = quadratic
        self.interactions = interactions
        self.max_onehot = max_onehot
        self.random_state = random_state

    def _numeric(self, X: pd.DataFrame, fitting: bool) -> pd.DataFrame:
        if fitting:
            self.scaler_ = (
                DomainScaler(self.parameters_, space=self.space_) if self.standardize else None
            )
            if self.scaler_ is not None:
                return self.scaler_.fit_transform(X)
        if self.scaler_ is not None:
            return self.scaler_.transform(X)
        _require_columns(X, self.parameters_, "YieldFeatures")
        return X[self.parameters_].astype("float64")

    def fit_transform(
        self, X: pd.DataFrame, y: object = None, **fit_params: object
    ) -> pd.DataFrame:
        """Fit all pieces and return the training design (target encodings cross-fitted).

        Parameters
        ----------
        X : pandas.DataFrame
            The batch table.
        y : array-like, optional
            Target; default the table's response column.
        **fit_params : ignored

        Returns
        -------
        pandas.DataFrame
            The design matrix, indexed like ``X``.
        """
        X = _require_frame(X, "YieldFeatures")
        sp = resolve_space(self.space)
        groups = sp.group_columns(X, self.groups)
        if self.groups is not None:
            _require_columns(X, list(self.groups), "YieldFeatures")
        params = (
            list(self.parameters)
            if self.parameters is not None
            else _default_parameters(X, sp, groups)
        )
        _require_columns(X, params, "YieldFeatures")
        if not params:
            raise ValueError("YieldFeatures: no numeric factor columns found")
        self.space_ = sp
        self.parameters_ = params
        numeric = self._numeric(X, fitting=True)
        self.poly_ = PolynomialTerms(quadratic=self.quadratic, interactions=self.interactions)
        terms = self.poly_.fit_transform(numeric)
        self.groups_ = GroupEncoder(
            groups, space=sp, max_onehot=self.max_onehot, random_state=self.random_state
        )
        encoded = self.groups_.fit_transform(X, y)
        self.n_features_in_ = len(params) + len(groups)
        self.feature_names_in_ = np.asarray([*params, *groups], dtype=object)
        return self._join(terms, encoded)

    def fit(self, X: pd.DataFrame, y: object = None) -> Self:
        """Fit all pieces.

        Parameters
        ----------
        X : pandas.DataFrame
            The batch table.
        y : array-like, optional
            Target; default the table's response column.

        Returns
        -------
        YieldFeatures
            The fitted transformer.
        """
        self.fit_transform(X, y)
        return self

    @staticmethod
    def _join(terms: pd.DataFrame, encoded: pd.DataFrame) -> pd.DataFrame:
        out = pd.concat([terms, encoded], axis=1)
        out.attrs = dict(terms.attrs)
        return out

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Return the design matrix for new rows.

        Parameters
        ----------
        X : pandas.DataFrame
            A table with the fitted parameter and group columns.

        Returns
        -------
        pandas.DataFrame
            The design matrix, indexed like ``X``.
        """
        check_is_fitted(self, "poly_")
        X = _require_frame(X, "YieldFeatures")
        return self._join(self.poly_.transform(self._numeric(X, False)), self.groups_.transform(X))

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """Return polynomial term names followed by group encoding names.

        Parameters
        ----------
        input_features : ignored

        Returns
        -------
        ndarray of str
            Output feature names.
        """
        check_is_fitted(self, "poly_")
        return np.concatenate(
            [self.poly_.get_feature_names_out(), self.groups_.get_feature_names_out()]
        )
