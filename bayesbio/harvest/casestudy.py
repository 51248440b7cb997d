"""The case study of spec §6: Table 1, Fig. 3 and Fig. 4 data, Table 2.

Common random numbers: ``reps = SeedSequence(random_seed).spawn(n_replications)``; per
replication ``hist, batch, pol, prior = reps[r].spawn(4)``, made once and reused for every
policy and ``n``. ``default_rng(hist).standard_normal((n, 2))`` gives the historical data
(nested across ``n``), ``default_rng(batch).standard_normal((T, 2))`` the batch shocks (one
physical path per replication, shared by all policies), a fresh ``default_rng(pol)`` feeds
RL-MR, and ``default_rng(prior).standard_normal((m, 2))`` gives Table 2's prior data.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from .growth import run_batch
from .knowledge import KnowledgeState
from .mdp import evaluate_policy, myopic_harvest_mask, single_thread_blas, true_laws
from .params import HarvestParams, get_scenario
from .policies import POLICY_NAMES, RLMR, make_policy

__all__ = ["DEFAULT_POLICIES", "HarvestCaseStudy", "harvest_case_study", "paired_differences"]

DEFAULT_POLICIES = ("PI-MDP", "CP", "myopic", "plug-in", "plug-in-static", "RL-MR")
_NO_DATA = ("PI-MDP", "CP", "myopic-PI")
TABLE1_COLUMNS = [
    "scenario",
    "policy",
    "n",
    "mean_reward",
    "sd_reward",
    "se_mean",
    "mean_epoch",
    "sd_epoch",
    "failure_rate",
    "diff_vs_pi",
    "diff_vs_pi_se",
    "exact_value",
    "seconds",
]
TABLE2_COLUMNS = [
    "prior",
    "kappa",
    "m",
    "n",
    "mean_reward",
    "sd_reward",
    "mean_epoch",
    "sd_epoch",
    "failure_rate",
]


class HarvestCaseStudy(NamedTuple):
    """Outputs of :func:`harvest_case_study`.

    Attributes
    ----------
    table1 : pandas.DataFrame
        Reward per scenario, policy and ``n`` (columns ``scenario, policy, n, mean_reward,
        sd_reward, se_mean, mean_epoch, sd_epoch, failure_rate, diff_vs_pi, diff_vs_pi_se,
        exact_value, seconds``).
    fig3 : pandas.DataFrame
        Stopping-epoch counts (``scenario, policy, n, epoch, n_harvested, n_failed``).
    fig4 : pandas.DataFrame
        Control limits (``scenario, policy, n, t, p, i_star``); ``n`` is missing for the
        perfect-information references.
    table2 : pandas.DataFrame
        RL-MR under informative priors (``prior, kappa, m, n, mean_reward, sd_reward,
        mean_epoch, sd_epoch, failure_rate``); ``attrs`` hold the scenario and PI-MDP's mean
        on the same paths.
    records : pandas.DataFrame
        One row per scenario, policy, ``n`` and replication: ``reward, harvest_epoch, failed,
        p_final, i_final`` (Table 2 runs have ``policy = "RL-MR[prior=...]"``).
    """

    table1: pd.DataFrame
    fig3: pd.DataFrame
    fig4: pd.DataFrame
    table2: pd.DataFrame
    records: pd.DataFrame


def _check_int(name: str, value: int, low: int) -> int:
    if isinstance(value, bool) or int(value) != value or value < low:
        raise ValueError(f"argument {name!r} must be an integer >= {low}, got {value!r}")
    return int(value)


def _scenarios(scenarios: Sequence[str] | Mapping[str, HarvestParams]) -> dict[str, HarvestParams]:
    if isinstance(scenarios, Mapping):
        out = {str(k): get_scenario(v) for k, v in scenarios.items()}
    elif isinstance(scenarios, str):
        out = {scenarios: get_scenario(scenarios)}
    else:
        out = {name: get_scenario(name) for name in scenarios}
    if not out:
        raise ValueError("argument 'scenarios' is empty")
    return out


def _knowledge(params: HarvestParams, z: np.ndarray, prior: KnowledgeState | None = None):
    return KnowledgeState.from_data(
        params.mu_p + params.sigma_p * z[:, 0], params.mu_i + params.sigma_i * z[:, 1], prior=prior
    )


def _summary(rewards: np.ndarray, epochs: np.ndarray, failed: np.ndarray) -> dict[str, float]:
    return {
        "mean_reward": float(rewards.mean()),
        "sd_reward": float(rewards.std(ddof=1)),
        "se_mean": float(rewards.std(ddof=1) / np.sqrt(rewards.size)),
        "mean_epoch": float(epochs.mean()),
        "sd_epoch": float(epochs.std(ddof=1)),
        "failure_rate": float(failed.mean()),
    }


def paired_differences(records: pd.DataFrame, reference: str = "PI-MDP") -> pd.DataFrame:
    """Paired reward differences of every policy against a reference, with standard errors.

    Parameters
    ----------
    records : pandas.DataFrame
        ``HarvestCaseStudy.records``.
    reference : str, default "PI-MDP"
        Reference policy.

    Returns
    -------
    pandas.DataFrame
        Columns ``scenario, policy, n, diff, se, n_replications``: mean of ``reward -
        reward[reference]`` over the replications, and its standard error.
    """
    key = ["scenario", "n", "replication"]
    ref = records.loc[records["policy"] == reference, [*key, "reward"]]
    if ref.empty:
        raise ValueError(f"argument 'reference': policy {reference!r} not in records")
    merged = records.merge(ref.rename(columns={"reward": "ref"}), on=key, how="inner")
    merged["d"] = merged["reward"] - merged["ref"]
    g = merged.groupby(["scenario", "policy", "n"], sort=False)["d"]
    out = g.agg(diff="mean", sd=lambda d: d.std(ddof=1), n_replications="size").reset_index()
    out["se"] = out["sd"] / np.sqrt(out["n_replications"])
    return out[["scenario", "policy", "n", "diff", "se", "n_replications"]]


def harvest_case_study(
    *,
    scenarios: Sequence[str] | Mapping[str, HarvestParams] = ("default", "high_risk"),
    n_values: Sequence[int] = (3, 10, 30),
    n_replications: int = 100,
    policies: Sequence[str] = DEFAULT_POLICIES,
    random_seed: int = 2024,
    n_draws: int = 32,
    fig3_n: int = 3,
    fig4: bool = True,
    fig4_n: Sequence[int] = (3, 10),
    fig4_t: int = 12,
    fig4_draws: int = 256,
    table2: bool = True,
    table2_kappas: Sequence[float] = (0.5, 1.0, 1.5),
    table2_m: int = 10,
    table2_n: int = 3,
) -> HarvestCaseStudy:
    """Run the harvest-timing case study with common random numbers across policies.

    Parameters
    ----------
    scenarios : sequence of str or mapping of str to HarvestParams, default ("default", "high_risk")
        Scenarios (names from :data:`~bayesbio.harvest.SCENARIOS`, or named parameters).
    n_values : sequence of int, default (3, 10, 30)
        Historical data sizes (one-epoch observations per growth rate, each >= 2).
    n_replications : int, default 100
        Replications (>= 2); raising it keeps the earlier replications' inputs.
    policies : sequence of str, default DEFAULT_POLICIES
        Policies to simulate (``"PI-MDP"`` is always included: the paired reference).
    random_seed : int, default 2024
        Root seed of the common-random-numbers protocol.
    n_draws : int, default 32
        RL-MR Thompson draws per decision.
    fig3_n : int, default 3
        Data size of the Fig. 3 histograms (must be in ``n_values``).
    fig4 : bool, default True
        Compute the Fig. 4 thresholds.
    fig4_n : sequence of int, default (3, 10)
        Data sizes of the Fig. 4 curves (typical knowledge states).
    fig4_t : int, default 12
        Epoch of the Fig. 4 curves.
    fig4_draws : int, default 256
        RL-MR draws for a whole Fig. 4 curve (from ``default_rng(random_seed)``).
    table2 : bool, default True
        Compute Table 2 (informative priors, first scenario, ``table2_n`` points).
    table2_kappas : sequence of float, default (0.5, 1.0, 1.5)
        Mean scalings of the prior process.
    table2_m : int, default 10
        Prior data points per growth rate.
    table2_n : int, default 3
        Current data points per growth rate.

    Returns
    -------
    HarvestCaseStudy
        ``table1, fig3, fig4, table2, records`` (DataFrames).

    Raises
    ------
    ValueError
        On unknown scenario or policy names and out-of-range sizes; the message names the
        argument.
    """
    scen = _scenarios(scenarios)
    n_rep = _check_int("n_replications", n_replications, 2)
    n_values = [_check_int("n_values", n, 2) for n in n_values]
    if not n_values:
        raise ValueError("argument 'n_values' is empty")
    _check_int("n_draws", n_draws, 1)
    unknown = [p for p in policies if p not in POLICY_NAMES]
    if unknown:
        raise ValueError(
            f"argument 'policies': unknown policy {unknown[0]!r}; expected some of "
            f"{list(POLICY_NAMES)}"
        )
    policies = ["PI-MDP", *[p for p in dict.fromkeys(policies) if p != "PI-MDP"]]
    if fig3_n not in n_values:
        raise ValueError(f"argument 'fig3_n' ({fig3_n}) must be one of n_values {n_values}")
    if table2:
        table2_m = _check_int("table2_m", table2_m, 2)
        table2_n = _check_int("table2_n", table2_n, 0)
    for n in fig4_n:
        _check_int("fig4_n", n, 2)

    reps = np.random.SeedSequence(random_seed).spawn(n_rep)
    kids = [r.spawn(4) for r in reps]  # hist, batch, pol, prior: made once, reused
    n_hist = max([*n_values, table2_n if table2 else 0])
    z_hist = [np.random.default_rng(k[0]).standard_normal((n_hist, 2)) for k in kids]
    z_prior = [np.random.default_rng(k[3]).standard_normal((table2_m, 2)) for k in kids]

    records: list[dict] = []
    rows1: list[dict] = []
    with single_thread_blas():
        for sname, params in scen.items():
            z_batch = [np.random.default_rng(k[1]).standard_normal((params.T, 2)) for k in kids]
            for policy in policies:
                sizes = n_values[:1] if policy in _NO_DATA else n_values
                for n in sizes:
                    start = time.perf_counter()
                    out, exact = [], []
                    for r in range(n_rep):
                        kn = _knowledge(params, z_hist[r][:n])
                        pol = make_policy(
                            policy,
                            params,
                            knowledge=kn,
                            random_seed=kids[r][2],
                            **({"n_draws": n_draws} if policy == "RL-MR" else {}),
                        )
                        out.append(run_batch(pol, params, z_batch[r], kn))
                        if policy == "plug-in-static":
                            exact.append(evaluate_policy(params, pol.solution.harvest)[0])
                    seconds = time.perf_counter() - start
                    if policy == "PI-MDP":
                        exact = [make_policy("PI-MDP", params).solution.value0]
                    elif policy == "CP":
                        grid_n = params.n_grid
                        exact = [evaluate_policy(params, np.zeros((grid_n, grid_n), bool))[0]]
                    elif policy == "myopic-PI":
                        exact = [
                            evaluate_policy(
                                params, myopic_harvest_mask(params, *true_laws(params))
                            )[0]
                        ]
                    for n_row in n_values if policy in _NO_DATA else [n]:
                        for r, o in enumerate(out):
                            records.append(
                                {
                                    "scenario": sname,
                                    "policy": policy,
                                    "n": n_row,
                                    "replication": r,
                                    "reward": o.reward,
                                    "harvest_epoch": o.harvest_epoch,
                                    "failed": o.failed,
                                    "p_final": o.p_final,
                                    "i_final": o.i_final,
                                }
                            )
                        rows1.append(
                            {
                                "scenario": sname,
                                "policy": policy,
                                "n": n_row,
                                "exact_value": float(np.mean(exact)) if exact else np.nan,
                                "seconds": seconds,
                            }
                        )

        rec = pd.DataFrame.from_records(records)
        table1 = _table1(rec, rows1)
        fig3 = _fig3(rec, scen, fig3_n)
        fig4_df = _fig4(scen, fig4_n, fig4_t, fig4_draws, random_seed) if fig4 else _empty_fig4()
        if table2:
            sname, params = next(iter(scen.items()))
            t2, t2_records = _table2(
                sname,
                params,
                rec,
                kids,
                z_hist,
                z_prior,
                table2_kappas,
                table2_m,
                table2_n,
                n_draws,
            )
            rec = pd.concat([rec, t2_records], ignore_index=True)
        else:
            t2 = pd.DataFrame(columns=TABLE2_COLUMNS)
    return HarvestCaseStudy(table1, fig3, fig4_df, t2, rec)


def _table1(rec: pd.DataFrame, rows1: list[dict]) -> pd.DataFrame:
    diffs = paired_differences(rec)
    out = []
    for row in rows1:
        sel = rec[
            (rec["scenario"] == row["scenario"])
            & (rec["policy"] == row["policy"])
            & (rec["n"] == row["n"])
        ]
        d = diffs[
            (diffs["scenario"] == row["scenario"])
            & (diffs["policy"] == row["policy"])
            & (diffs["n"] == row["n"])
        ]
        stats = _summary(
            sel["reward"].to_numpy(), sel["harvest_epoch"].to_numpy(), sel["failed"].to_numpy()
        )
        out.append(
            {
                **{k: row[k] for k in ("scenario", "policy", "n")},
                **stats,
                "diff_vs_pi": float(d["diff"].iloc[0]),
                "diff_vs_pi_se": float(d["se"].iloc[0]),
                "exact_value": row["exact_value"],
                "seconds": row["seconds"],
            }
        )
    table = pd.DataFrame(out, columns=TABLE1_COLUMNS)
    return table.sort_values(["scenario", "n"], kind="stable").reset_index(drop=True)


def _fig3(rec: pd.DataFrame, scen: dict[str, HarvestParams], n: int) -> pd.DataFrame:
    rows = []
    sel = rec[rec["n"] == n]
    for (sname, policy), g in sel.groupby(["scenario", "policy"], sort=False):
        T = scen[sname].T
        epochs = g["harvest_epoch"].to_numpy()
        failed = g["failed"].to_numpy()
        harvested = np.bincount(epochs[~failed], minlength=T + 1)
        fails = np.bincount(epochs[failed], minlength=T + 1)
        for e in range(T + 1):
            rows.append(
                {
                    "scenario": sname,
                    "policy": policy,
                    "n": n,
                    "epoch": e,
                    "n_harvested": int(harvested[e]),
                    "n_failed": int(fails[e]),
                }
            )
    return pd.DataFrame(
        rows, columns=["scenario", "policy", "n", "epoch", "n_harvested", "n_failed"]
    )


def _empty_fig4() -> pd.DataFrame:
    return pd.DataFrame(columns=["scenario", "policy", "n", "t", "p", "i_star"])


def _fig4(
    scen: dict[str, HarvestParams], ns: Sequence[int], t: int, draws: int, seed: int
) -> pd.DataFrame:
    frames = []
    for sname, params in scen.items():
        if not 0 <= t < params.T:
            raise ValueError(f"argument 'fig4_t' must be in 0..{params.T - 1}, got {t}")
        p = np.geomspace(2.0, params.p_bar, 40, endpoint=False)
        curves: list[tuple[str, int | None, np.ndarray]] = [
            ("PI-MDP", None, make_policy("PI-MDP", params).threshold(t, p)),
            ("myopic-PI", None, make_policy("myopic-PI", params).threshold(t, p)),
        ]
        for n in ns:
            kn = KnowledgeState.typical(
                params.mu_p, params.sigma_p, params.mu_i, params.sigma_i, int(n)
            )
            curves.append(("myopic", int(n), make_policy("myopic", params).threshold(t, p, kn)))
            rl = RLMR(params, random_seed=seed, n_threshold_draws=draws)
            curves.append(("RL-MR", int(n), rl.threshold(t, p, kn)))
        for policy, n, i_star in curves:
            frames.append(
                pd.DataFrame(
                    {
                        "scenario": sname,
                        "policy": policy,
                        "n": pd.array([n] * p.size, dtype="Int64"),
                        "t": t,
                        "p": p,
                        "i_star": i_star,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def _table2(
    sname: str,
    params: HarvestParams,
    rec: pd.DataFrame,
    kids: list,
    z_hist: list[np.ndarray],
    z_prior: list[np.ndarray],
    kappas: Sequence[float],
    m: int,
    n: int,
    n_draws: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    n_rep = len(kids)
    z_batch = [np.random.default_rng(k[1]).standard_normal((params.T, 2)) for k in kids]
    rows, records = [], []
    settings: list[tuple[str, float]] = [("default", np.nan)]
    settings += [("informative", float(k)) for k in kappas]
    for prior_name, kappa in settings:
        reuse = rec[(rec["scenario"] == sname) & (rec["policy"] == "RL-MR") & (rec["n"] == n)]
        if prior_name == "default" and len(reuse) == n_rep:
            out = reuse[["reward", "harvest_epoch", "failed"]].to_numpy()
            rewards, epochs, failed = out[:, 0].astype(float), out[:, 1].astype(int), out[:, 2]
            failed = failed.astype(bool)
        else:
            res = []
            for r in range(n_rep):
                prior = None
                if prior_name == "informative":
                    zp = z_prior[r]
                    prior = KnowledgeState.from_data(
                        kappa * params.mu_p + params.sigma_p * zp[:, 0],
                        kappa * params.mu_i + params.sigma_i * zp[:, 1],
                    )
                kn = _knowledge(params, z_hist[r][:n], prior) if (n or prior is None) else prior
                pol = RLMR(params, n_draws=n_draws, random_seed=kids[r][2])
                o = run_batch(pol, params, z_batch[r], kn)
                res.append(o)
                records.append(
                    {
                        "scenario": sname,
                        "policy": f"RL-MR[prior={prior_name},kappa={kappa}]",
                        "n": n,
                        "replication": r,
                        "reward": o.reward,
                        "harvest_epoch": o.harvest_epoch,
                        "failed": o.failed,
                        "p_final": o.p_final,
                        "i_final": o.i_final,
                    }
                )
            rewards = np.array([o.reward for o in res])
            epochs = np.array([o.harvest_epoch for o in res])
            failed = np.array([o.failed for o in res])
        stats = _summary(rewards, epochs, failed)
        stats.pop("se_mean")
        rows.append(
            {
                "prior": prior_name,
                "kappa": kappa,
                "m": m if prior_name != "default" else 0,
                "n": n,
                **stats,
            }
        )
    table = pd.DataFrame(rows, columns=TABLE2_COLUMNS)
    table.attrs["scenario"] = sname
    pi = rec[
        (rec["scenario"] == sname) & (rec["policy"] == "PI-MDP") & (rec["n"] == rec["n"].min())
    ]
    table.attrs["pi_mdp_mean_reward"] = float(pi["reward"].mean())
    return table, pd.DataFrame.from_records(records)
