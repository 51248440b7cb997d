"""A closed-loop campaign: propose the next batches, add their results, refit, repeat.

A :class:`Campaign` holds what process development lives in: the process space, the batch
table so far, how to build the yield model, the target group and its recipe. Each round

1. :meth:`Campaign.recommend` proposes ``batch_size`` next batches by **q-Thompson
   sampling with common random numbers**: ``q`` distinct posterior draws ``f_s`` of the
   group's mean response are taken (the same draws evaluated at every candidate, from one
   seed), and each proposal is the best candidate under its own draw. A draw that is
   optimistic about an unexplored region sends a batch there (exploration); draws agree
   where the posterior is sure (exploitation). A candidate already proposed (within 2 % of
   the ranges) is skipped, so the ``q`` batches differ.
2. Every proposal is **safe**: within the search box (``constraints``: bounds and fixed
   factors) and ``P(yield of the batch >= (1 - delta) x mean yield at the recipe) >=
   safety_prob`` (defaults 0.2 and 0.9), from predictive draws with new-batch noise against
   the same posterior draws at the recipe. Real batches cost money: a batch likely to lose
   more than ``delta`` of the recipe's yield is never proposed. Proposals also stay within
   the group's data support (``trust_region=True``, the guard of
   :func:`~bayesbio.recommend.recommend`: near the group's recipe or near a batch the group
   has run): a model that pools a factor's effect over groups is as sure of a 2,000 L
   vessel's response to an agitation only 50 L vessels ran as of what it learnt there, so
   the safety rule alone does not keep steps short. Every batch the campaign adds supports
   its own neighbourhood, so the region moves with the experiments, one step per round.
   The safety rule is judged from draws that carry the group's own slope deviation
   (``transfer_risk=True``): whether this vessel responds as the others did is a risk too.
   A setpoint the group has already run is proposed again only when no new safe one is
   left (a replicate informs only the noise); small steps around the recipe (within 3 % of
   the ranges) are always among the candidates and pass the rule when they are nearly as
   safe as the recipe itself (``P(safe)`` at least the recipe's, capped at ``safety_prob``,
   less 0.02), so a round in which nothing else is safe learns the local slope instead of
   replicating the recipe. The recipe competes as any candidate, once per round; it is
   replicated only when no other safe candidate remains.
3. :meth:`Campaign.add` appends the results and refits (a fresh fit on the whole table; the
   samplers bayesbio uses do not warm-start).
4. :meth:`Campaign.best` is the safe recommendation of :func:`bayesbio.recommend.recommend`:
   the risk-aware optimum if it beats the recipe with probability ``min_confidence``, else
   the recipe.

The recipe is fixed when the campaign starts (``recipe=``, else the group's median setpoint
in the starting table), so the reference does not drift as experiments are added.

Saved without pickle: :meth:`Campaign.save` writes ``campaign.json`` (settings, space,
recipe, history), ``batches.csv`` and, for a :class:`~bayesbio.models.bayesian.
BayesianYieldModel`, its ``model.nc``; :meth:`Campaign.load` reads them back.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import pandas as pd

from bayesbio import schema
from bayesbio.checks import check_fraction, check_int
from bayesbio.recommend.acquisition import SAFE_LOSS, SAFETY_PROB, p_better, p_safe
from bayesbio.recommend.constraints import Constraints
from bayesbio.recommend.context import build_context, group_recipe, resolve_group
from bayesbio.recommend.recommendation import Recommendation, recommend
from bayesbio.recommend.sampler import Evaluator
from bayesbio.recommend.search import lhs
from bayesbio.space import ProcessSpace, resolve_space

if TYPE_CHECKING:
    from bayesbio.models.protocol import YieldModel

__all__ = ["Campaign"]

_FORMAT = "1"
_MIN_GAP = 0.02  # proposals closer than this (unit scale, max norm) count as the same
# proposals of one round closer than this (unit scale, max norm) spend two batches on nearly
# one guess: kept apart while a new safe setpoint that far from the others exists
_ROUND_GAP = 0.1
# Small steps around the recipe: this many candidates within this reach (unit scale, max
# norm), safe when P(safe) >= min(safety_prob, P(safe) at the recipe) - _LOCAL_MARGIN.
# Measured on the independent worlds (BENCHMARKS.md, 2026-12-07, sixth session): with the
# run setpoints left out, proposals repeating a past batch 30.6 -> 0 %, unsafe 6.9 -> 6.9 %,
# final regret 7.3 -> 4.0 %.
_LOCAL_CANDIDATES = 64
_LOCAL_REACH = 0.03
_LOCAL_MARGIN = 0.02


class Campaign:
    """A process-development campaign: space, batches, model settings, target group.

    Parameters
    ----------
    space : ProcessSpace, str, Path or None
        The process (None: the demo process; a path: a TOML space).
    table : pandas.DataFrame
        The batches so far (the space's batch id, group columns, factors and response).
    model : callable, optional
        A factory returning an unfitted yield model, e.g. ``lambda: ForestYield()``; any
        model following the bayesbio model protocol. Default: a
        :class:`~bayesbio.models.bayesian.BayesianYieldModel` with ``model_params``.
    model_params : mapping, optional
        Keyword arguments of the default ``BayesianYieldModel`` (``space`` is set), e.g.
        ``{"structures": ("quadratic",), "draws": 500, "tune": 500, "chains": 2}``. Only
        without ``model``; must be JSON-able (they are saved).
    group : mapping of str to str, optional
        Target group of the campaign (required when the table holds several groups).
    recipe : mapping of str to float, optional
        The group's recipe; default the group's median setpoint in ``table``.
    delta : float, default 0.2
        Tolerated loss: a proposed batch must reach ``(1 - delta)`` x the recipe's mean yield
        with probability ``safety_prob`` (for a response to minimise: stay below ``(1 +
        delta)`` x the recipe's mean).
    safety_prob : float, default 0.9
        Required probability of that.
    min_confidence : float, default 0.9
        Confidence :meth:`best` needs to move away from the recipe.
    constraints : Constraints or mapping, optional
        Search bounds, fixed factors and support guard (as in :func:`~bayesbio.recommend.
        recommend`); must be JSON-able to be saved (bounds, fixed, numbers).
    trust_region : bool, default True
        Propose only setpoints within the group's data support (the guard's distance limit,
        ``constraints``' support and ``max_distance``); False searches the whole box under the
        safety rule alone.
    transfer_risk : bool, default True
        Judge the safety rule from draws that also carry the target group's own slope
        deviation (:mod:`bayesbio.recommend.transfer`; only where the model pools factor
        effects over groups): a move the group never made is as risky as the model's
        varying-slope prior says, not as sure as the effect pooled over the other groups. The
        Thompson draws that choose among the safe candidates stay the model's own. Measured on
        the independent worlds (BENCHMARKS.md): proposals below 80 % of the recipe's yield
        9.3 -> 4.3 %, yield lost in the experiments 15.2 -> 11.5 %, final regret 5.5 -> 5.8 %.
    random_seed : int or None, default None
        Seed of the campaign; round ``r`` uses ``(random_seed, r)`` for its proposals and,
        unless ``model_params`` sets its own ``random_seed``, for the default model's fit, so
        the same seed and the same data give the same fits and proposals.

    Attributes
    ----------
    table : pandas.DataFrame
        All batches so far.
    round : int
        Number of :meth:`add` calls so far.
    history : list of dict
        Per round: the proposals made and the batches added.
    model_ : fitted yield model
        The model on ``table`` (fitted on first use).
    """

    def __init__(
        self,
        space: ProcessSpace | str | Path | None,
        table: pd.DataFrame,
        *,
        model: Callable[[], YieldModel | Any] | None = None,
        model_params: Mapping[str, Any] | None = None,
        group: Mapping[str, Any] | None = None,
        recipe: Mapping[str, float] | None = None,
        delta: float = SAFE_LOSS,
        safety_prob: float = SAFETY_PROB,
        min_confidence: float = 0.9,
        constraints: Constraints | Mapping[str, Any] | None = None,
        trust_region: bool = True,
        transfer_risk: bool = True,
        random_seed: int | None = None,
    ) -> None:
        self.space = resolve_space(space)
        if model is not None and model_params:
            raise ValueError(
                "pass either model (a factory) or model_params (for BayesianYieldModel), not both"
            )
        if model is not None and not callable(model):
            raise ValueError(
                f"model must be a callable returning an unfitted yield model, got "
                f"{type(model).__name__}"
            )
        self.model = model
        self.model_params = dict(model_params or {})
        self.table = schema.validate(table, space=self.space).reset_index(drop=True)
        # checked now, not after the first fit: a mistyped label costs seconds, not a fit
        given, _, _ = resolve_group(
            self.table,
            self.space.group_columns(self.table),
            group,
            allow_new=False,
            new_hint="A campaign starts from batches of its own group: name a group the "
            "table holds, or add that group's first batches to the table",
        )
        self.group = {str(k): given[str(k)] for k in (group or {})}
        self.delta = check_fraction("delta", delta)
        self.safety_prob = check_fraction("safety_prob", safety_prob)
        self.min_confidence = check_fraction("min_confidence", min_confidence)
        self.constraints = constraints
        self.trust_region = bool(trust_region)
        self.transfer_risk = bool(transfer_risk)
        if random_seed is not None:
            random_seed = check_int("random_seed", random_seed, minimum=0)
        self.random_seed = random_seed
        self.round = 0
        self.history: list[dict[str, Any]] = []
        self.model_: Any = None
        self._recipe_given = dict(recipe) if recipe is not None else None
        self.recipe: dict[str, float] | None = None

    # -- model ---------------------------------------------------------------------------------
    def _new_model(self) -> Any:
        if self.model is not None:
            return self.model()
        from bayesbio.models.bayesian import BayesianYieldModel

        params = dict(self.model_params)
        if self.random_seed is not None and "random_seed" not in params:
            # round r's fit is seeded by (random_seed, r): same seed, same data, same fits
            params["random_seed"] = int(self.random_seed) + 7_919 * self.round
        return BayesianYieldModel(space=self.space, **params)

    def fit(self) -> Self:
        """Fit a fresh model on :attr:`table` (done on first use and by :meth:`add`)."""
        self.model_ = self._new_model().fit(self.table)
        if self.recipe is None:  # the first fit: resolve the group and fix the recipe
            ctx = build_context(self.model_, self.group or None, "auto", self.constraints)
            omitted = [
                c
                for c in ctx.group_cols
                if c not in self.group and ctx.table[c].astype(str).nunique() > 1
            ]
            if omitted:
                # a group column with several labels that the campaign's group does not name
                said = [n for n in ctx.notes if any(f"'{c}'" in n for c in omitted)]
                warnings.warn("Campaign: " + "; ".join(said), UserWarning, stacklevel=2)
            point = group_recipe(self._recipe_given, ctx)
            self.recipe = {p: float(v) for p, v in zip(ctx.factors, point, strict=True)}
        return self

    def _fitted(self) -> Any:
        if self.model_ is None:
            self.fit()
        return self.model_

    # -- the loop ------------------------------------------------------------------------------
    def recommend(
        self, batch_size: int = 4, *, n_draws: int = 500, n_candidates: int = 512
    ) -> pd.DataFrame:
        """Propose the next ``batch_size`` batches (q-Thompson sampling under the safety rule).

        Parameters
        ----------
        batch_size : int, default 4
            Number of batches ``q`` to propose.
        n_draws : int, default 500
            Posterior draws (common to all candidates).
        n_candidates : int, default 512
            Latin-hypercube candidates over the search box (plus the group's setpoints, the
            recipe and a refinement around the best ones).

        Returns
        -------
        pandas.DataFrame
            One row per proposed batch: the group columns, the factors (domain units),
            ``expected_yield`` and ``sd`` (posterior mean and SD of the mean response there),
            ``q05`` and ``q95`` (the 90 % predictive interval of a new batch there, batch noise
            included; :meth:`add` names results that fall outside it), ``p_safe`` (P(batch
            yield >= (1 - delta) x recipe yield); for a response to minimise P(batch value <=
            (1 + delta) x recipe value)), ``p_better_than_recipe``
            and ``draw`` (the posterior draw it is best under). ``attrs["round"]`` is the
            round; ``attrs["n_safe"]`` how many new candidates (setpoints the group has not
            run) passed the safety rule;
            ``attrs["notes"]`` what was resolved for you (e.g. a group column not named).
            Setpoints the group has run come only after every new safe candidate; with no
            safe candidate left, the proposals are the recipe (replicates). Proposals of one
            round stay 10 % of the operating ranges apart while new safe setpoints that far
            apart exist. Proposing again in the same round replaces that round's proposals in
            :attr:`history`.
        """
        q = check_int("batch_size", batch_size, minimum=1)
        n_draws = check_int("n_draws", n_draws, minimum=max(10, q))
        n_candidates = check_int("n_candidates", n_candidates, minimum=1)
        model = self._fitted()
        ctx = build_context(model, self.group or None, "auto", self.constraints)
        ctx.recipe = group_recipe(self.recipe, ctx)
        rng = np.random.default_rng([self.random_seed or 0, self.round])
        seed = int(rng.integers(2**31 - 1))
        ev = Evaluator(model, ctx, n_draws=n_draws, seed=seed, execution_sd=np.zeros(ctx.space.k))
        sgn = ctx.sign
        r0 = ctx.clip(ctx.recipe[None])
        d = len(ctx.res.free)
        cands = ctx.to_points(lhs(n_candidates, d, rng)) if d else r0.copy()
        group_pts = ctx.table.loc[ctx.in_group, ctx.factors].to_numpy(dtype=float)
        cands = np.vstack([r0, ctx.clip(group_pts), cands])
        if d:  # small steps around the recipe
            step = (2.0 * lhs(_LOCAL_CANDIDATES, d, rng) - 1.0) * _LOCAL_REACH
            cands = np.vstack([cands, ctx.to_points(np.clip(ctx.to_unit(r0) + step, 0.0, 1.0))])
        f = ev.raw(cands, noise=False)
        if d:  # refine around the best posterior-mean candidates
            best = np.argsort(-(sgn * f.mean(axis=0)))[:8]
            cloud = (2.0 * lhs(32, d, rng) - 1.0) * 0.05
            u = np.clip(ctx.to_unit(cands[best])[:, None, :] + cloud[None], 0.0, 1.0)
            extra = ctx.to_points(u.reshape(-1, d))
            cands = np.vstack([cands, extra])
            f = np.hstack([f, ev.raw(extra, noise=False)])
        if self.transfer_risk:  # same posterior draws, each with the group's slope deviation
            ev = Evaluator(
                model,
                ctx,
                n_draws=n_draws,
                seed=seed,
                execution_sd=np.zeros(ctx.space.k),
                transfer_risk=True,
            )
            ref = ev.raw(cands[:1], noise=False)[:, 0]
        else:
            ref = f[:, 0]
        y = ev.raw(cands, noise=True)
        safe = p_safe(sgn, y, ref, self.delta)
        ok = safe >= self.safety_prob
        if self.trust_region:
            ok &= ctx.support.guard_distance(cands, ctx.res.support) <= ctx.res.max_distance
        unit = ctx.to_unit(cands) if d else np.zeros((len(cands), 0))
        if d:
            # a small step from the recipe is nearly as safe as the recipe itself
            local = np.max(np.abs(unit - unit[0]), axis=1) <= _LOCAL_REACH + 1e-12
            bar = min(self.safety_prob, float(safe[0])) - _LOCAL_MARGIN
            ok |= local & (safe >= bar)
        ok[0] = True  # the recipe is always allowed
        # a setpoint the group has run comes only after every new one: a replicate informs
        # only the noise
        fresh = np.ones(len(cands), dtype=bool)
        if d and len(group_pts):
            run = ctx.to_unit(ctx.clip(group_pts))
            fresh = np.abs(unit[:, None, :] - run[None, :, :]).max(axis=2).min(axis=1) >= _MIN_GAP
        fresh[0] = True
        draws = rng.choice(n_draws, size=q, replace=False)
        chosen: list[int] = []
        for s in draws:
            pick = 0  # nothing safe left: replicate the recipe
            for pool, gap in ((ok & fresh, _ROUND_GAP), (ok & fresh, _MIN_GAP), (ok, _MIN_GAP)):
                values = np.where(pool, sgn * f[s], -np.inf)
                found = None
                for i in np.argsort(-values):
                    if not pool[i]:
                        break
                    if any(np.max(np.abs(unit[i] - unit[c]), initial=0.0) < gap for c in chosen):
                        # already proposed, or nearly (the recipe too: once, unless nothing
                        # else is safe)
                        continue
                    found = int(i)
                    break
                if found is not None:
                    pick = found
                    break
            chosen.append(pick)
        idx = np.array(chosen)
        out = ctx.frame(cands[idx])
        out["expected_yield"] = f[:, idx].mean(axis=0)
        out["sd"] = f[:, idx].std(axis=0)
        # where a new batch there lands: its 90 % predictive interval (batch noise included)
        out["q05"], out["q95"] = np.quantile(y[:, idx], [0.05, 0.95], axis=0)
        out["p_safe"] = safe[idx]
        out["p_better_than_recipe"] = p_better(sgn, f[:, idx], f[:, :1])
        out["draw"] = draws
        out.attrs.update(
            round=self.round,
            n_safe=int((ok & fresh)[1:].sum()),
            units=self.space.response.unit,
            rule=(
                f"P({self.space.response.noun} >= {1 - self.delta:g} x recipe) >= "
                if sgn > 0
                else f"P({self.space.response.noun} <= {1 + self.delta:g} x recipe) >= "
            )
            + f"{self.safety_prob:g}",
            notes=list(ctx.notes),
        )
        entry = {
            "round": self.round,
            "proposed": _records(out[[*ctx.group_cols, *ctx.factors, "q05", "q95"]]),
        }
        last = self.history[-1] if self.history else {}
        if last.get("round") == self.round and "proposed" in last and "added" not in last:
            last.update(entry)  # proposed again for the same round: replaced
        else:
            self.history.append(entry)
        return out

    def results_template(self, proposals: pd.DataFrame) -> pd.DataFrame:
        """Return a results sheet for the proposals: new batch ids, setpoints, empty response.

        The table :meth:`add` takes back once each batch's response is filled in: one row per
        proposal, with a batch id the campaign has not used (``R<round>-<i>``, plus ``b``,
        ``c`` ... if a past batch took it), the group columns, the setpoints to 4 significant
        digits (what the CLI prints; change a value to the setpoint actually run) and an
        empty response column. A group column the proposals leave open (e.g. the campaign
        label) gets the label of the target group's latest batch. Delete the rows of batches
        that were not run.

        Parameters
        ----------
        proposals : pandas.DataFrame
            The output of :meth:`recommend`.

        Returns
        -------
        pandas.DataFrame
            Columns: the space's batch id, the group columns of the proposals, the factors,
            the response (NaN).
        """
        factors = self.space.factor_names
        missing = [c for c in factors if c not in proposals.columns]
        if missing:
            raise ValueError(
                f"proposals: columns {missing} missing; pass the table Campaign.recommend returned"
            )
        bid = self.space.batch_id
        used = set(self.table[bid].astype(str)) if bid in self.table.columns else set()
        rnd = int(proposals.attrs.get("round", self.round)) + 1
        ids = []
        for i in range(len(proposals)):
            base, suffix = f"R{rnd}-{i + 1}", ""
            for letter in "bcdefghijklmnopqrstuvwxyz":
                if base + suffix not in used:
                    break
                suffix = letter
            ids.append(base + suffix)
        given = [c for c in self.space.group_columns(proposals) if c in self.table.columns]
        out = pd.DataFrame({bid: pd.array(ids, dtype="str")}, index=proposals.index)
        for col in given:
            out[col] = proposals[col].astype(str).to_numpy()
        if len(proposals):
            # group columns the proposals leave open (a campaign label): the target group's
            # latest batch's label
            mine = np.ones(len(self.table), dtype=bool)
            for col in given:
                mine &= (self.table[col].astype(str) == str(proposals[col].iloc[0])).to_numpy()
            last = self.table[mine].iloc[-1] if mine.any() else self.table.iloc[-1]
            for col in self.space.group_columns(self.table):
                if col not in given:
                    out[col] = str(last[col])
        for col in factors:
            out[col] = [float(f"{v:.4g}") for v in proposals[col].to_numpy(dtype=float)]
        out[self.space.response.name] = np.nan
        return out.reset_index(drop=True)

    def add(self, results: pd.DataFrame) -> Self:
        """Append the results of new batches and refit the model.

        Parameters
        ----------
        results : pandas.DataFrame
            New batches with the columns of :attr:`table` (batch id, group columns, factors,
            response); batch ids must be new. A warning names results run outside a factor's
            operating range and results outside the 90 % predictive interval of the proposal
            they ran (matched by setpoint, within 2 % of the ranges).

        Returns
        -------
        Campaign
            ``self``, one round further.
        """
        bid = self.space.batch_id
        name = self.space.response.name
        if isinstance(results, pd.DataFrame) and name in results.columns:
            text = results[name].astype("string").fillna("").str.strip()
            empty = results[name].isna() | text.isin(["", "nan", "NaN", "None"])
            if empty.any():
                rows = results.index[empty.to_numpy()]
                who = (
                    [str(v) for v in results.loc[rows, bid]]
                    if bid in results.columns
                    else [f"row {r}" for r in rows]
                )
                raise ValueError(
                    f"results: column {name!r} is empty for {int(empty.sum())} batch(es) "
                    f"({', '.join(who[:8])}); fill in the {self.space.response.noun} of each "
                    "batch run and delete the rows of batches not run"
                )
        new = self._same_labels(schema.validate(results, space=self.space))
        if bid in new.columns and bid in self.table.columns:
            seen = sorted(set(new[bid].astype(str)) & set(self.table[bid].astype(str)))
            if seen:
                raise ValueError(
                    f"results: column {bid!r} repeats batch ids already in the campaign "
                    f"{seen[:5]}; give each new batch a new id"
                )
        open_round = [h for h in self.history if "proposed" in h and "added" not in h]
        said = _outside_operating(self.space, new) + _against_predictions(
            self.space, new, open_round[-1]["proposed"] if open_round else []
        )
        if said:
            warnings.warn("Campaign.add: " + "; ".join(said), UserWarning, stacklevel=2)
        self.table = pd.concat([self.table, new], ignore_index=True)
        if open_round:
            open_round[-1]["added"] = len(new)
        else:
            self.history.append({"round": self.round, "added": len(new)})
        self.round += 1
        return self.fit()

    def drop(self, batch_ids: Sequence[str], *, reason: str = "", refit: bool = True) -> Self:
        """Remove batches from the campaign's table (a wrong entry, a batch to exclude), refit.

        Parameters
        ----------
        batch_ids : sequence of str
            Ids in the batch-id column of :attr:`table`; each must be there.
        reason : str, optional
            Why, kept with the ids in :attr:`history`.
        refit : bool, default True
            Refit the model now (False when :meth:`add` follows, which refits).

        Returns
        -------
        Campaign
            ``self`` at the same round, without those batches.
        """
        bid = self.space.batch_id
        if bid not in self.table.columns:
            raise ValueError(f"batch_ids: the campaign's table has no batch-id column {bid!r}")
        ids = [str(b) for b in batch_ids]
        if not ids:
            raise ValueError("batch_ids: name at least one batch to drop")
        have = self.table[bid].astype(str)
        unknown = sorted(set(ids) - set(have))
        if unknown:
            raise ValueError(
                f"batch_ids: {unknown[:5]} not in the campaign's column {bid!r} (it holds e.g. "
                f"{have.tail(3).tolist()})"
            )
        keep = ~have.isin(ids)
        if keep.sum() < 2:
            raise ValueError("batch_ids: dropping them leaves fewer than 2 batches to fit")
        self.table = self.table.loc[keep].reset_index(drop=True)
        self.history.append({"round": self.round, "dropped": ids, "reason": str(reason)})
        return self.fit() if refit else self

    def _same_labels(self, new: pd.DataFrame) -> pd.DataFrame:
        """Write the results' group labels as the campaign's table writes them.

        "1000 L" in a results file is the campaign's "1000L" (the cleaner's rule: case,
        spacing and vessel volumes); a label that matches none of the table's is named in a
        warning, since it starts a group of its own.
        """
        from bayesbio.clean import _label_key

        new = new.copy()
        said = []
        for col in self.space.group_columns(new):
            if col not in self.table.columns:
                continue
            known = {_label_key(str(v), col): str(v) for v in self.table[col].dropna().unique()}
            labels = new[col].astype(str)
            mapped = pd.Series(
                [known.get(_label_key(v, col), v) for v in labels], index=labels.index
            )
            for old, now in sorted(set(zip(labels, mapped, strict=True))):
                if old != now:
                    said.append(f"{col!r} label {old!r} read as {now!r}, as in the campaign")
                elif now not in known.values():
                    said.append(
                        f"{col!r} label {now!r} is not in the campaign's table: its batches "
                        "start a group of their own; check the spelling"
                    )
            new[col] = mapped.to_numpy()
        if said:
            warnings.warn("Campaign.add: " + "; ".join(said), UserWarning, stacklevel=3)
        return new

    def best(self, **kwargs: Any) -> Recommendation:
        """Return the safe recommendation of :func:`~bayesbio.recommend.recommend`.

        The campaign's group, recipe, constraints, ``min_confidence`` and a per-round seed
        are passed; ``kwargs`` go to :func:`~bayesbio.recommend.recommend` (e.g.
        ``objective="mean"``, ``n_draws=500``).
        """
        model = self._fitted()
        settings = {
            "group": self.group or None,
            "recipe": self.recipe,
            "constraints": self.constraints,
            "min_confidence": self.min_confidence,
            "random_seed": int(
                np.random.default_rng([self.random_seed or 0, self.round, 1]).integers(2**31)
            ),
        }
        settings.update(kwargs)
        return recommend(model, **settings)

    # -- persistence ---------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the campaign to the folder ``path`` (created), without pickle.

        ``campaign.json`` (settings, space, recipe, history), ``batches.csv`` and, for a
        ``BayesianYieldModel``, the fitted ``model.nc``. A campaign built with a model
        factory is saved too, but :meth:`load` then needs the factory again.
        """
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        cons = self.constraints
        if isinstance(cons, Constraints):
            cons = {k: getattr(cons, k) for k in cons.__dataclass_fields__}
        state = {
            "format": _FORMAT,
            "space": json.loads(self.space.to_json()),
            "model": "factory" if self.model is not None else "BayesianYieldModel",
            "model_params": self.model_params,
            "group": self.group,
            "recipe": self.recipe,
            "recipe_given": self._recipe_given,
            "delta": self.delta,
            "safety_prob": self.safety_prob,
            "min_confidence": self.min_confidence,
            "constraints": cons,
            "trust_region": self.trust_region,
            "transfer_risk": self.transfer_risk,
            "random_seed": self.random_seed,
            "round": self.round,
            "history": self.history,
        }
        (folder / "campaign.json").write_text(json.dumps(state, indent=1, sort_keys=True))
        self.table.to_csv(folder / "batches.csv", index=False)
        model_file = folder / "model.nc"
        if self.model_ is not None and self.model is None:
            self.model_.save(model_file)
        elif model_file.exists():
            model_file.unlink()
        return folder

    @classmethod
    def load(
        cls, path: str | Path, *, model: Callable[[], YieldModel | Any] | None = None
    ) -> Campaign:
        """Read a campaign written by :meth:`save`.

        Parameters
        ----------
        path : str or Path
            The folder :meth:`save` wrote.
        model : callable, optional
            The model factory, required (and only allowed) when the campaign was built with
            one; its model is refitted on the saved batches.

        Returns
        -------
        Campaign
            The campaign, at the same round, with the same history and (for a
            ``BayesianYieldModel``) the same fitted model.
        """
        folder = Path(path)
        state = json.loads((folder / "campaign.json").read_text())
        if state.get("format") != _FORMAT:
            raise ValueError(
                f"{folder / 'campaign.json'} has format {state.get('format')!r}; this bayesbio "
                f"reads format {_FORMAT!r}"
            )
        if state["model"] == "factory" and model is None:
            raise ValueError(
                f"{folder} was saved from a campaign with a model factory: pass "
                "Campaign.load(path, model=<the same factory>)"
            )
        if state["model"] != "factory" and model is not None:
            raise ValueError(
                f"{folder} holds a BayesianYieldModel campaign; load it without model="
            )
        space = ProcessSpace.from_json(json.dumps(state["space"]))
        table = pd.read_csv(folder / "batches.csv")
        for col in space.group_columns(table):
            table[col] = table[col].astype(str)
        if space.batch_id in table.columns:
            table[space.batch_id] = table[space.batch_id].astype(str)
        cons = state["constraints"]
        if isinstance(cons, dict):
            cons = {
                k: (
                    {n: tuple(v) for n, v in cons[k].items()}
                    if k == "bounds" and cons[k]
                    else cons[k]
                )
                for k in cons
            }
        out = cls(
            space,
            table,
            model=model,
            model_params=state["model_params"] if model is None else None,
            group=state["group"],
            recipe=state["recipe_given"],
            delta=state["delta"],
            safety_prob=state["safety_prob"],
            min_confidence=state["min_confidence"],
            constraints=cons,
            trust_region=state.get("trust_region", True),
            transfer_risk=state.get("transfer_risk", False),
            random_seed=state["random_seed"],
        )
        out.round = int(state["round"])
        out.history = list(state["history"])
        out.recipe = state["recipe"]
        model_file = folder / "model.nc"
        if model is None and model_file.exists():
            from bayesbio.models.bayesian import BayesianYieldModel

            out.model_ = BayesianYieldModel.load(model_file)
        return out


def _outside_operating(space: ProcessSpace, new: pd.DataFrame) -> list[str]:
    """Name the results run outside a factor's operating range (the model extrapolates)."""
    said = []
    bid = space.batch_id
    for f in space.factors:
        if f.name not in new.columns:
            continue
        values = pd.to_numeric(new[f.name], errors="coerce")
        lo, hi = f.operating
        off = values[(values < lo) | (values > hi)]
        if len(off):
            where = [
                f"{new.loc[i, bid] if bid in new.columns else f'row {i}'} at {v:g}"
                for i, v in off.items()
            ]
            said.append(
                f"{f.name!r} outside its operating range {lo:g}-{hi:g} {f.unit} "
                f"({', '.join(where[:5])}): the model extrapolates its surface there; check the "
                "value, or widen the range in the process declaration if it is real"
            )
    return said


def _against_predictions(
    space: ProcessSpace, new: pd.DataFrame, proposed: list[dict[str, Any]]
) -> list[str]:
    """Name the results outside the 90 % predictive interval of the proposal they ran.

    A result is matched to a proposal of the last round at (nearly) its setpoint: within 2 %
    of every factor's operating range.
    """
    prop = [p for p in proposed if "q05" in p and "q95" in p]
    names = [f.name for f in space.factors]
    if not prop or space.response.name not in new.columns or not set(names) <= set(new.columns):
        return []
    width = np.maximum(space.upper - space.lower, 1e-12)
    at = np.array([[float(p[n]) for n in names] for p in prop])
    x = new[names].to_numpy(dtype=float)
    gap = (np.abs(x[:, None, :] - at[None, :, :]) / width).max(axis=2)
    y = pd.to_numeric(new[space.response.name], errors="coerce").to_numpy(dtype=float)
    bid = space.batch_id
    matched, outside = 0, []
    for i in range(len(new)):
        j = int(np.argmin(gap[i]))
        if gap[i, j] > 0.02 or not np.isfinite(y[i]):
            continue
        matched += 1
        lo, hi = float(prop[j]["q05"]), float(prop[j]["q95"])
        if not lo <= y[i] <= hi:
            name = new[bid].iloc[i] if bid in new.columns else f"row {i}"
            outside.append(f"{name} {y[i]:.4g} (predicted {lo:.4g}-{hi:.4g})")
    if not outside:
        return []
    return [
        f"{len(outside)} of {matched} result(s) of the proposed batches fell outside their 90 % "
        f"predictive intervals (about 1 in 10 is expected by chance): {', '.join(outside[:6])}; "
        "more than that says the model was too sure there (check those batches, and read the "
        "next round's P(safe) as optimistic)"
    ]


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(frame.to_json(orient="records"))
