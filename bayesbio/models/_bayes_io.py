"""Persistence: one netCDF file per fitted model (no pickle), checked when loaded.

:class:`_PersistMixin` gives :class:`~bayesbio.models.bayesian.BayesianYieldModel` its
``save`` and ``load``; the helpers hash, check and restore what the file holds.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
import xarray as xr
from sklearn.utils.validation import check_is_fitted

from bayesbio.models import _bayes_sampling as sampling
from bayesbio.space import ProcessSpace, SpaceError, resolve_space

_log = logging.getLogger(__name__)

FORMAT_VERSION = "1"


class IncompatibleModelError(ValueError):
    """A saved model cannot be loaded: other model type, format version or changed config."""


def _sha(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


def _data_hash(table: pd.DataFrame) -> str:
    return _sha(pd.util.hash_pandas_object(table, index=True).to_numpy().tobytes())


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("bayesbio", "pymc", "arviz", "nutpie", "numpy", "pandas", "xarray"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def _stored_space(
    path: str | os.PathLike[str], attrs: Mapping[str, Any], params: dict[str, Any]
) -> ProcessSpace:
    """Return the process space saved with a model (hash checked); sets ``params["space"]``."""
    text = attrs.get("space")
    try:
        if params.get("space") is not None:
            params["space"] = ProcessSpace.from_dict(params["space"])
        if text is None:  # written before spaces were stored: the default space
            return resolve_space(params.get("space"))
        if _sha(str(text)) != attrs.get("space_hash"):
            raise IncompatibleModelError(
                f"{path}: the stored process space does not match its hash (it was changed "
                "after saving); refit instead of editing a saved model"
            )
        return ProcessSpace.from_json(str(text))
    except SpaceError as exc:
        raise IncompatibleModelError(
            f"{path}: the stored process space is invalid: {exc}"
        ) from None


def _outside_references(path: Path) -> list[str]:
    """List what in an HDF5 file points at other files (external links, external or virtual data).

    A file written by :meth:`BayesianYieldModel.save` has none; xarray/h5py would follow them
    while loading, reading files other than the one given.
    """
    import h5py

    found: list[str] = []
    with h5py.File(path, "r") as handle:

        def visit(name: str, link: Any) -> None:
            if isinstance(link, h5py.ExternalLink):
                found.append(f"external link {name!r} to {link.filename!r}")
            elif isinstance(link, h5py.HardLink):
                obj = handle[name]
                if isinstance(obj, h5py.Dataset):
                    if obj.external:
                        files = [str(e[0]) for e in obj.external]
                        found.append(f"variable {name!r} stored in external file(s) {files}")
                    if obj.is_virtual:
                        found.append(f"virtual variable {name!r}")

        handle.visititems_links(visit)
    return found


def _nonfinite_posterior(idata: Mapping[str, xr.DataTree]) -> list[str]:
    """Name every posterior variable holding NaN or infinite draws, per structure."""
    bad = []
    for structure, tree in idata.items():
        post = tree["posterior"].to_dataset()
        for name, da in post.data_vars.items():
            values = np.asarray(da.values)
            if values.dtype.kind not in "fiuc":
                bad.append(f"structure {structure!r}: {name!r} is not numeric")
                continue
            n = int(values.size - np.isfinite(values).sum())
            if n:
                bad.append(f"structure {structure!r}: {n} non-finite draw(s) of {name!r}")
    return bad


def _check_stored_table(path: Path, table: pd.DataFrame, space: ProcessSpace) -> None:
    """Refuse a stored training table with missing values or values outside the limits."""
    columns = [(f.name, f.limits, f.unit) for f in space.factors]
    columns.append((space.response.name, space.response.limits, space.response.unit))
    for name, (lo, hi), unit in columns:
        if name not in table.columns:
            raise IncompatibleModelError(
                f"{path}: the stored training table has no column {name!r}; refit the model"
            )
        values = pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values) | (values < lo) | (values > hi)
        if bad.any():
            raise IncompatibleModelError(
                f"{path}: the stored training table has {int(bad.sum())} missing value(s) or "
                f"value(s) of {name!r} outside the process limits {lo:g} to {hi:g} {unit} "
                f"(first: {values[bad][0]!r}); the file was edited or is corrupt: refit the model"
            )


class _PersistMixin:
    """``save`` and ``load`` of a fitted :class:`BayesianYieldModel` (netCDF, no pickle)."""

    def _config_json(self) -> str:
        params = self.get_params()
        params["groups"] = None if params["groups"] is None else list(params["groups"])
        params["structures"] = (
            [params["structures"]]
            if isinstance(params["structures"], str)
            else list(params["structures"])
        )
        params["priors"] = None if params["priors"] is None else dict(params["priors"])
        params["columns"] = None if params["columns"] is None else dict(params["columns"])
        # a space given as an object or a path is stored resolved (a path may be gone at load)
        params["space"] = None if params["space"] is None else self.space_.to_dict()
        return json.dumps(params, sort_keys=True)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted model to one netCDF file (h5netcdf), no pickle.

        The file holds, per structure, the posterior and sample stats as groups, the training
        table as a group, and in the root attrs (JSON): model type, format and package
        versions, configuration and its hash, the process space (``space_.to_json()``) and
        its hash, spec, stacking weights, diagnostics and the training-data hash.

        The file is written under a temporary name in the same folder and then renamed onto
        ``path`` (``os.replace``), so an interrupted or failed save leaves an earlier file at
        ``path`` as it was and never a half-written one.

        Parameters
        ----------
        path : str or os.PathLike
            Target file (conventionally ``.nc``).

        Returns
        -------
        pathlib.Path
            The path written.

        Raises
        ------
        ValueError
            If the posterior holds non-finite draws (an interrupted or failed sampler): such
            a model is never saved.
        """
        check_is_fitted(self, "idata_")
        path = Path(path)
        bad = _nonfinite_posterior(self.idata_)
        if bad:
            raise ValueError(
                f"not saving {path}: the posterior holds non-finite values ({'; '.join(bad[:3])}"
                f"{'; ...' if len(bad) > 3 else ''}), as after an interrupted or failed "
                "sampler; refit the model"
            )
        config = self._config_json()
        space_json = self.space_.to_json()
        tree = xr.DataTree()
        for s, t in self.idata_.items():
            tree[f"{s}/posterior"] = xr.DataTree(t["posterior"].to_dataset())
            tree[f"{s}/sample_stats"] = xr.DataTree(t["sample_stats"].to_dataset())
        tab = self.training_table_.reset_index(drop=False)
        tab.columns = [str(c) for c in tab.columns]
        data = {}
        for col in tab.columns:
            values = tab[col]
            if pd.api.types.is_numeric_dtype(values):
                data[col] = ("row", values.to_numpy())
            else:
                data[col] = ("row", values.astype(str).to_numpy(dtype=object))
        tree["training_table"] = xr.DataTree(xr.Dataset(data))
        tree.attrs.update(
            {
                "model_type": type(self).__name__,
                "format_version": FORMAT_VERSION,
                "versions": json.dumps(_versions(), sort_keys=True),
                "config": config,
                "config_hash": _sha(config),
                "spec": json.dumps(self.spec_, sort_keys=True),
                "space": space_json,
                "space_hash": _sha(space_json),
                "space_fingerprint": self.space_.fingerprint,
                "columns": json.dumps(None if self.columns is None else dict(self.columns)),
                "stacking_weights": json.dumps(self.stacking_weights_.to_dict()),
                "diagnostics": json.dumps(self.diagnostics_),
                "data_hash": self.data_hash_,
                "sampler": self.sampler_,
                "training_columns": json.dumps(list(self.training_table_.columns)),
                "training_index_name": json.dumps(self.training_table_.index.name),
            }
        )
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            tree.to_netcdf(tmp, engine="h5netcdf")
            os.replace(tmp, path)
        except BaseException:  # KeyboardInterrupt too: never leave the temporary file
            tmp.unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Self:
        """Load a model written by :meth:`save`, checking it rather than trusting it.

        What the file says about itself is checked against what it holds:

        * it is read only if nothing in it points at another file (HDF5 external links,
          variables stored in external files, virtual variables): loading reads ``path`` and
          nothing else (the training table is a group of the same file; the process space and
          configuration are JSON in its attributes and never name a file to read);
        * every posterior draw must be finite;
        * the stored training table must hold every factor and the response, finite and
          within the process space's limits;
        * the convergence diagnostics (R-hat, ESS, divergences, BFMI) and, for several
          structures, the LOO figures and stacking weights are recomputed from the stored
          draws; the diagnostics and weights written in the file's attributes are not used
          (weights that differ from the recomputed ones by more than 0.01 are refused);
        * the stored posterior's mean response at the training setpoints must lie within the
          response's limits (``space_.response.limits``): a posterior that predicts
          impossible values was edited or is corrupt, so it is refused, not merely warned
          about.

        Parameters
        ----------
        path : str or os.PathLike
            File written by :meth:`save`.

        Returns
        -------
        BayesianYieldModel
            The fitted model; predictions are identical to the saved one's.

        Raises
        ------
        FileNotFoundError
            If there is no file at ``path``.
        IncompatibleModelError
            If the file is not a bayesbio model file, holds another model type or another
            format version, has a configuration or process space that does not match its
            recorded hash, or fails one of the checks above. Files written before spaces
            were stored are read with the default space (the only one there was).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: no such model file; fit one first (`bayesbio fit --data TABLE --out "
                "DIR` writes DIR/model.nc)"
            )
        try:
            outside = _outside_references(path)
        except OSError:
            raise IncompatibleModelError(
                f"{path} is not a model file written by bayesbio (not netCDF-4/HDF5); pass the "
                "model.nc that `bayesbio fit` or `bayesbio study` wrote"
            ) from None
        if outside:
            raise IncompatibleModelError(
                f"{path} points at other files ({'; '.join(outside[:3])}); a model file written "
                "by bayesbio never does, so it is not read: refit the model"
            )
        with xr.open_datatree(path, engine="h5netcdf") as handle:
            tree = handle.load()
        attrs = dict(tree.attrs)
        if attrs.get("model_type") != cls.__name__:
            raise IncompatibleModelError(
                f"{path} holds a {attrs.get('model_type')!r} model, not {cls.__name__}"
            )
        if str(attrs.get("format_version")) != FORMAT_VERSION:
            versions = attrs.get("versions", "{}")
            raise IncompatibleModelError(
                f"{path} was written in model format {attrs.get('format_version')!r} "
                f"(packages {versions}); this bayesbio reads format {FORMAT_VERSION!r}. "
                "Refit the model with this version, or load it with the version that wrote it."
            )
        config = str(attrs.get("config", ""))
        if _sha(config) != attrs.get("config_hash"):
            raise IncompatibleModelError(
                f"{path}: the stored configuration does not match its hash (it was changed "
                "after saving); refit instead of editing a saved model"
            )
        params = json.loads(config)
        params["groups"] = None if params["groups"] is None else tuple(params["groups"])
        params["structures"] = tuple(params["structures"])
        space = _stored_space(path, attrs, params)
        model = cls(**params)
        spec = json.loads(attrs["spec"])
        spec.setdefault("factors", list(space.factor_names))
        if spec["factors"] != list(space.factor_names):
            raise IncompatibleModelError(
                f"{path}: the stored model was fitted on factors {spec['factors']} but its "
                f"stored process space has {list(space.factor_names)}; refit the model"
            )
        model.space_ = space
        model.spec_ = spec
        model.idata_ = {}
        stored_weights = pd.Series(json.loads(attrs["stacking_weights"]), dtype=float)
        for s in stored_weights.index:
            t = xr.DataTree()
            t["posterior"] = xr.DataTree(tree[f"{s}/posterior"].to_dataset())
            t["sample_stats"] = xr.DataTree(tree[f"{s}/sample_stats"].to_dataset())
            model.idata_[s] = t
        bad = _nonfinite_posterior(model.idata_)
        if bad:
            raise IncompatibleModelError(
                f"{path}: the stored posterior holds non-finite values ({'; '.join(bad[:3])}"
                f"{'; ...' if len(bad) > 3 else ''}), as after an interrupted sampler; refit "
                "the model"
            )
        model.data_hash_ = attrs["data_hash"]
        model.sampler_ = attrs["sampler"]
        ds = tree["training_table"].to_dataset()
        tab = pd.DataFrame({c: ds[c].values for c in ds.data_vars})
        index_col = "index" if "index" in tab.columns else tab.columns[0]
        tab = tab.set_index(index_col)
        tab.index.name = json.loads(attrs["training_index_name"])
        columns = json.loads(attrs["training_columns"])
        missing = [c for c in columns if c not in tab.columns]
        if missing:
            raise IncompatibleModelError(
                f"{path}: the stored training table lacks column(s) {missing}; the file was "
                "edited or is corrupt: refit the model"
            )
        tab = tab[columns]
        for g in spec["groups"]:
            tab[g] = tab[g].astype(str)
        _check_stored_table(path, tab, space)
        model.training_table_ = tab
        model.n_features_in_ = space.k
        # diagnostics and stacking weights from the draws, never from the file's attributes
        model.diagnostics_ = {s: sampling.diagnose(t) for s, t in model.idata_.items()}
        with warnings.catch_warnings(record=True) as caught:  # LOO notices, as at fit
            warnings.simplefilter("always")
            model._stack()
        for w in caught:
            _log.info("recomputing LOO of %s: %s", path, w.message)
        recomputed = model.stacking_weights_
        gap = float(np.max(np.abs(recomputed.to_numpy() - stored_weights.to_numpy())))
        if not gap <= 0.01:
            raise IncompatibleModelError(
                f"{path}: the stored stacking weights {stored_weights.round(3).to_dict()} differ "
                f"from those recomputed from its draws {recomputed.round(3).to_dict()}; the file "
                "was edited: refit instead of editing a saved model"
            )
        if gap <= 1e-9:  # keep the saved values bit for bit: identical predictions
            model.stacking_weights_ = stored_weights.rename("weight")
        model._failures()
        model._lack_of_fit()
        lo, hi = space.response.limits
        mean = model.predict(tab)
        off = ~np.isfinite(mean) | (mean < lo) | (mean > hi)
        if off.any():
            worst = float(mean[off][np.argmax(np.abs(mean[off]))])
            raise IncompatibleModelError(
                f"{path}: the stored posterior predicts a mean {space.response.name} of "
                f"{worst:.4g} {space.response.unit} at {int(off.sum())} training setpoint(s), "
                f"outside the process limits {lo:g} to {hi:g} {space.response.unit}; the file "
                "was edited or is corrupt: refit the model"
            )
        if _data_hash(tab) != model.data_hash_:
            _log.info("training table of %s re-hashes differently after the round trip", path)
        return model
