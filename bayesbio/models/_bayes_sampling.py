"""Sampling and diagnostics for the Bayesian yield model (internal).

nutpie is the default sampler. Its compiled log-density is cached per *model signature*
(structure, likelihood, group level counts, parameterisation, priors): the data enter the
graph as ``pm.Data`` containers, so a later fit with the same signature (another CV fold,
another seed, a bootstrap) swaps the data into the compiled model with ``with_data`` instead
of recompiling. If nutpie is missing or fails, PyMC's own NUTS runs instead (with a warning).
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections import OrderedDict
from typing import Any

import arviz as az
import numpy as np
import pymc as pm
import xarray as xr

from bayesbio.checks import CONVERGENCE, check_int, make_rng, seed_int

_log = logging.getLogger(__name__)

_CACHE: OrderedDict[str, Any] = OrderedDict()

#: nutpie's mass-matrix adaptation when none is given (nutpie's own default); the model
#: chooses per data size (``BayesianYieldModel(adaptation="auto")``)
ADAPTATION = "diag"
ADAPTATIONS = ("draw_diag", "diag", "low_rank")
_CACHE_SIZE = 32


def clear_compile_cache() -> None:
    """Forget all cached nutpie compilations (the next fit compiles afresh)."""
    _CACHE.clear()


def _data_values(model: pm.Model) -> dict[str, np.ndarray]:
    return {name: np.asarray(var.get_value()) for name, var in _shared(model).items()}


def _shared(model: pm.Model) -> dict[str, Any]:
    return {v.name: v for v in model.data_vars}


def _compiled(model: pm.Model, key: str) -> Any:
    import nutpie

    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key].with_data(**_data_values(model))
    t0 = time.perf_counter()
    compiled = nutpie.compile_pymc_model(model, backend="numba")
    _log.info("nutpie compile took %.1f s", time.perf_counter() - t0)
    _CACHE[key] = compiled
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return compiled


def _seed(random_seed: int | None) -> int:
    """Return the sampler's seed: ``random_seed`` checked, or a fresh one when it is None."""
    seed = seed_int(random_seed)
    if seed is None:
        return int(make_rng(None).integers(2**31 - 1))
    return seed


def _relabel(tree: xr.DataTree, model: pm.Model) -> xr.DataTree:
    """Give a (possibly cached-model) trace the coordinates of the current model."""
    coords = {k: list(v) for k, v in model.coords.items() if v is not None}
    for group in ("posterior",):
        ds = tree[group].to_dataset()
        present = {k: v for k, v in coords.items() if k in ds.dims}
        tree[group] = xr.DataTree(ds.assign_coords(present))
    return tree


def sample_model(
    model: pm.Model,
    key: str,
    *,
    draws: int,
    tune: int,
    chains: int,
    target_accept: float,
    random_seed: int | None,
    progressbar: bool,
    nuts_sampler: str,
    cores: int | None = None,
    adaptation: str | None = None,
) -> tuple[xr.DataTree, str]:
    """Sample ``model``; return the trace (posterior + sample_stats) and the sampler used.

    ``adaptation``: nutpie's mass-matrix adaptation, default :data:`ADAPTATION`.
    """
    seed = _seed(random_seed)
    if nuts_sampler == "nutpie":
        try:
            import nutpie

            compiled = _compiled(model, key)
            tree = nutpie.sample(
                compiled,
                draws=draws,
                tune=tune,
                chains=chains,
                cores=cores,
                seed=seed,
                save_warmup=False,
                progress_bar=progressbar,
                target_accept=target_accept,
                adaptation=ADAPTATION if adaptation is None else adaptation,
            )
            tree = _relabel(tree, model)
            return _strip(tree), "nutpie"
        except ImportError as err:  # nutpie not installed
            reason = f"nutpie is not available ({err})"
        except Exception as err:  # any nutpie failure falls back to PyMC NUTS
            reason = f"nutpie failed ({type(err).__name__}: {err})"
        warnings.warn(
            f"{reason}; falling back to PyMC's NUTS sampler (slower). Pass "
            "nuts_sampler='pymc' to skip nutpie.",
            UserWarning,
            stacklevel=3,
        )
    elif nuts_sampler != "pymc":
        raise ValueError(f"nuts_sampler must be 'nutpie' or 'pymc', got {nuts_sampler!r}")
    tree = pm.sample(
        draws=draws,
        tune=tune,
        chains=chains,
        cores=cores,
        random_seed=seed,
        progressbar=progressbar,
        nuts_sampler="pymc",
        nuts={"target_accept": target_accept},
        model=model,
    )
    return _strip(tree), "pymc"


#: target_accept of a rerun after divergent transitions
RERUN_TARGET_ACCEPT = 0.99


def extra_runs_for(extra_runs: int | str, draws: int, chains: int) -> int:
    """Resolve ``extra_runs``: "auto" is 2 for a run sized for the ESS the checks ask, else 0.

    A run is sized for the checks when ``chains x draws >= 4 x`` the minimum ESS of
    :data:`bayesbio.checks.CONVERGENCE` (an efficiency of 25 % reaches it); shorter runs
    (exploration, tests) are taken as they come.
    """
    if isinstance(extra_runs, str) and extra_runs == "auto":
        return 2 if chains * draws >= 4 * CONVERGENCE["min_ess"] else 0
    if isinstance(extra_runs, str | None):
        raise ValueError(f"extra_runs must be 'auto' or an integer >= 0, got {extra_runs!r}")
    return check_int("extra_runs", extra_runs, minimum=0)


def sample_checked(
    model: pm.Model,
    key: str,
    *,
    extra_runs: int,
    draws: int,
    tune: int,
    chains: int,
    target_accept: float,
    random_seed: int | None,
    **kwargs: Any,
) -> tuple[xr.DataTree, str]:
    """Sample ``model`` and act on failed convergence checks, at most ``extra_runs`` times.

    What the sampler's warning advises, done before the user sees it. After divergent
    transitions the extra run samples at ``target_accept`` 0.99 (smaller steps: fewer
    divergences) and replaces the whole trace (divergent draws may be biased); when only
    R-hat or ESS fail, ``chains`` more chains of the same length and at the same
    ``target_accept`` are appended (every chain is a valid chain after its own tuning, so
    the first draws are kept; smaller steps would cost more gradients per draw and fix
    nothing the first run did wrong). Stops when the checks pass, when
    divergences remain at 0.99, when the ESS could not reach the check even with every
    remaining run appended (a hard posterior: more of the same sampler does not fix it, the
    warning must reach the user), or after ``extra_runs`` runs. The
    trace's ``sample_stats`` attrs record ``runs`` (sampler runs made), ``target_accept``
    and ``history`` (one line per extra run), which :func:`diagnose` reports.
    """
    seeds = [random_seed] + [
        None if random_seed is None else int(random_seed) + 104_729 * (i + 1)
        for i in range(extra_runs)
    ]
    kw = {"draws": draws, "tune": tune, "chains": chains, **kwargs}
    tree, used = sample_model(model, key, target_accept=target_accept, random_seed=seeds[0], **kw)
    history, runs = [], 1
    for seed in seeds[1:]:
        found = diagnose(tree)
        failed = failed_checks(found)
        diverged = found["divergences"] > CONVERGENCE["divergences"]
        if not failed or (diverged and target_accept >= RERUN_TARGET_ACCEPT):
            break
        # chains appended in every remaining run multiply the ESS by at most this factor;
        # a posterior that cannot reach the ESS check that way is reported, not resampled
        kept = tree["posterior"].sizes["chain"] // chains
        reach = (kept + extra_runs + 1 - runs) / kept
        ess = lowest_ess(found)
        if not diverged and not ess * reach >= CONVERGENCE["min_ess"]:
            history.append(f"min ESS {ess:.0f}: too low to reach {CONVERGENCE['min_ess']:.0f}")
            break
        if diverged:
            target_accept = max(target_accept, RERUN_TARGET_ACCEPT)
        more, used = sample_model(model, key, target_accept=target_accept, random_seed=seed, **kw)
        runs += 1
        if diverged:
            tree, action = more, f"repeated at target_accept {target_accept}"
        else:
            tree, action = _append_chains(tree, more), f"{chains} chains added"
        history.append(f"{'; '.join(failed)}: {action}")
        _log.info("sampling: %s", history[-1])
    stats = tree["sample_stats"].to_dataset()
    stats.attrs.update(
        {
            "runs": runs,
            "target_accept": float(target_accept),
            "history": json.dumps(history),
        }
    )
    tree["sample_stats"] = xr.DataTree(stats)
    return tree, used


def _append_chains(first: xr.DataTree, second: xr.DataTree) -> xr.DataTree:
    """Concatenate two traces of the same model and draw count along ``chain``."""
    out = xr.DataTree()
    for group in ("posterior", "sample_stats"):
        a, b = first[group].to_dataset(), second[group].to_dataset()
        n_a, n_b = a.sizes["chain"], b.sizes["chain"]
        a = a.assign_coords(chain=np.arange(n_a))
        b = b.assign_coords(chain=np.arange(n_a, n_a + n_b))
        out[group] = xr.DataTree(xr.concat([a, b], dim="chain", combine_attrs="override"))
    out.attrs.update(first.attrs)
    return out


def _strip(tree: xr.DataTree) -> xr.DataTree:
    """Keep posterior and sample_stats; drop warmup and data groups (the model stores data)."""
    out = xr.DataTree()
    out["posterior"] = xr.DataTree(tree["posterior"].to_dataset())
    stats = tree["sample_stats"].to_dataset()
    keep = [v for v in ("diverging", "energy", "tree_depth", "n_steps", "lp") if v in stats]
    out["sample_stats"] = xr.DataTree(stats[keep])
    out.attrs.update({k: v for k, v in tree.attrs.items() if isinstance(v, str | int | float)})
    return out


def diagnose(tree: xr.DataTree) -> dict[str, float]:
    """Summarise the convergence of one posterior.

    Parameters
    ----------
    tree : xarray.DataTree
        A trace with ``posterior`` and ``sample_stats`` groups.

    Returns
    -------
    dict
        ``max_r_hat`` (rank-normalised split R-hat), ``min_ess_bulk``, ``min_ess_tail``,
        ``divergences`` (count), ``min_bfmi`` (energy Bayesian fraction of missing
        information, lowest chain; NaN if energy was not recorded), ``n_draws`` (all
        chains) and ``runs`` (sampler runs behind the draws: more than 1 when the first run
        failed its checks and :func:`sample_checked` repeated or extended it).
    """
    post = tree["posterior"].to_dataset()
    n_chain, n_draw = post.sizes["chain"], post.sizes["draw"]

    def _extreme(ds: xr.Dataset, fn: Any) -> float:
        vals = [np.asarray(ds[v].values, dtype=float).ravel() for v in ds.data_vars]
        flat = np.concatenate(vals) if vals else np.array([np.nan])
        flat = flat[np.isfinite(flat)]
        return float(fn(flat)) if flat.size else float("nan")

    # constant entries (e.g. the fixed diagonal of a correlation factor) have no R-hat or
    # ESS: their NaNs are dropped by _extreme, without a RuntimeWarning per entry
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        rhat = az.rhat(post) if n_chain > 1 else None
        ess_bulk = az.ess(post, method="bulk")
        ess_tail = az.ess(post, method="tail")
    found = {
        "max_r_hat": _extreme(rhat, np.max) if rhat is not None else float("nan"),
        "min_ess_bulk": _extreme(ess_bulk, np.min),
        "min_ess_tail": _extreme(ess_tail, np.min),
        "divergences": float(tree["sample_stats"]["diverging"].values.sum()),
        "min_bfmi": float("nan"),
        "n_draws": float(n_chain * n_draw),
        "runs": float(tree["sample_stats"].attrs.get("runs", 1)),
    }
    stats = tree["sample_stats"].to_dataset()
    if "energy" in stats:
        energy = np.asarray(stats["energy"].values, dtype=float)
        num = np.mean(np.diff(energy, axis=1) ** 2, axis=1)
        den = np.var(energy, axis=1)
        found["min_bfmi"] = float(np.min(num / den))
    return found


def lowest_ess(found: dict[str, float]) -> float:
    """Return the ESS the checks judge: the lower of the bulk and tail ESS."""
    return min(found["min_ess_bulk"], found["min_ess_tail"])


def failed_checks(found: dict[str, float]) -> list[str]:
    """Which :data:`bayesbio.checks.CONVERGENCE` thresholds a diagnostics dict fails.

    An empty list means every check passed.
    """
    failed = []
    if np.isfinite(found["max_r_hat"]) and found["max_r_hat"] > CONVERGENCE["max_r_hat"]:
        failed.append(f"max R-hat {found['max_r_hat']:.3f} > {CONVERGENCE['max_r_hat']}")
    ess = lowest_ess(found)
    if not np.isfinite(ess) or ess < CONVERGENCE["min_ess"]:
        failed.append(f"min ESS {ess:.0f} < {CONVERGENCE['min_ess']:.0f}")
    if found["divergences"] > CONVERGENCE["divergences"]:
        failed.append(f"{int(found['divergences'])} divergent transitions")
    return failed


def signature(payload: dict[str, Any]) -> str:
    """Return a stable cache key for a model signature."""
    return json.dumps(payload, sort_keys=True, default=str)
