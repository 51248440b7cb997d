"""Plots of the case study: Fig. 3 (stopping epochs), Fig. 4 (control limits), Table 1.

Each function draws on an optional ``ax`` and returns it; none calls ``plt.show()``.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

__all__ = ["plot_harvest_epochs", "plot_reward_table", "plot_thresholds"]


def _require(df: pd.DataFrame, columns: Sequence[str], arg: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"argument {arg!r}: missing column(s) {missing}")


def _one(df: pd.DataFrame, column: str, value: object, arg: str) -> pd.DataFrame:
    if value is None:
        values = df[column].dropna().unique()
        if len(values) > 1:
            raise ValueError(
                f"argument {arg!r}: several values {list(values)} in column {column!r}; choose one"
            )
        return df
    out = df[df[column] == value]
    if out.empty:
        raise ValueError(f"argument {arg!r}: no rows with {column} == {value!r}")
    return out


def plot_harvest_epochs(
    fig3: pd.DataFrame,
    *,
    scenario: str | None = None,
    policies: Sequence[str] = ("PI-MDP", "CP", "RL-MR"),
    ax: Axes | None = None,
) -> Axes:
    """Histogram of stopping epochs per policy, failures as their own category (Fig. 3).

    Parameters
    ----------
    fig3 : pandas.DataFrame
        ``HarvestCaseStudy.fig3``.
    scenario : str, optional
        Scenario to draw (needed when ``fig3`` holds several).
    policies : sequence of str, default ("PI-MDP", "CP", "RL-MR")
        Policies to draw, side by side.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure if omitted.

    Returns
    -------
    matplotlib.axes.Axes
        The axes.
    """
    _require(fig3, ["scenario", "policy", "epoch", "n_harvested", "n_failed"], "fig3")
    df = _one(fig3, "scenario", scenario, "scenario")
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    epochs = np.sort(df["epoch"].unique())
    width = 0.8 / max(len(policies), 1)
    for k, policy in enumerate(policies):
        sel = df[df["policy"] == policy]
        if sel.empty:
            raise ValueError(f"argument 'policies': no data for policy {policy!r}")
        sel = sel.set_index("epoch")[["n_harvested", "n_failed"]].reindex(epochs, fill_value=0)
        x = epochs + (k - (len(policies) - 1) / 2) * width
        bars = ax.bar(x, sel["n_harvested"], width=width, label=f"{policy} harvested")
        ax.bar(
            x,
            sel["n_failed"],
            width=width,
            bottom=sel["n_harvested"],
            hatch="//",
            color=bars.patches[0].get_facecolor(),
            alpha=0.5,
            label=f"{policy} failed",
        )
    ax.set_xlabel("stopping epoch (6 h each)")
    ax.set_ylabel("replications")
    ax.set_xticks(epochs)
    n = df["n"].iloc[0] if "n" in df.columns and len(df) else ""
    ax.set_title(f"Harvest epochs ({df['scenario'].iloc[0]}, n = {n})")
    ax.legend(fontsize="small", ncol=2)
    return ax


def plot_thresholds(
    fig4: pd.DataFrame, *, scenario: str | None = None, ax: Axes | None = None
) -> Axes:
    """Control limits ``i*(p)`` per policy and data size (Fig. 4); harvest above a curve.

    Parameters
    ----------
    fig4 : pandas.DataFrame
        ``HarvestCaseStudy.fig4``.
    scenario : str, optional
        Scenario to draw (needed when ``fig4`` holds several).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure if omitted.

    Returns
    -------
    matplotlib.axes.Axes
        The axes.
    """
    _require(fig4, ["policy", "n", "t", "p", "i_star"], "fig4")
    df = fig4 if "scenario" not in fig4.columns else _one(fig4, "scenario", scenario, "scenario")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    for (policy, n), g in df.groupby(["policy", "n"], dropna=False, sort=False):
        ref = pd.isna(n)
        label = policy if ref else f"{policy}, n = {n}"
        ax.plot(g["p"], g["i_star"], "k--" if policy == "PI-MDP" else "-", label=label, lw=1.5)
    ax.set_xscale("log")
    ax.set_xlabel("protein p (units of p0)")
    ax.set_ylabel("impurity threshold i* (units of i0)")
    ax.set_title(f"Harvest thresholds at t = {int(df['t'].iloc[0])} (harvest above)")
    ax.legend(fontsize="small")
    return ax


def plot_reward_table(
    table1: pd.DataFrame, *, scenario: str | None = None, ax: Axes | None = None
) -> Axes:
    """Mean reward per policy and data size with +-2 SE bars (Table 1).

    Parameters
    ----------
    table1 : pandas.DataFrame
        ``HarvestCaseStudy.table1``.
    scenario : str, optional
        Scenario to draw (needed when ``table1`` holds several).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure if omitted.

    Returns
    -------
    matplotlib.axes.Axes
        The axes.
    """
    _require(table1, ["scenario", "policy", "n", "mean_reward", "se_mean"], "table1")
    df = _one(table1, "scenario", scenario, "scenario")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    policies = list(dict.fromkeys(df["policy"]))
    ns = sorted(df["n"].unique())
    width = 0.8 / len(ns)
    for k, n in enumerate(ns):
        sel = df[df["n"] == n].set_index("policy").reindex(policies)
        x = np.arange(len(policies)) + (k - (len(ns) - 1) / 2) * width
        ax.bar(
            x, sel["mean_reward"], width=width, yerr=2 * sel["se_mean"], label=f"n = {n}", capsize=2
        )
    ax.set_xticks(np.arange(len(policies)), policies, rotation=30, ha="right")
    ax.set_ylabel("mean total reward")
    ax.set_title(f"Reward by policy ({df['scenario'].iloc[0]})")
    ax.legend(fontsize="small")
    return ax
