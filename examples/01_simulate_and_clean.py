"""Simulate dirty batch records, clean them with an audit log, and explore the result.

Figures go to the folder in the ``BAYESBIO_OUTPUT`` environment variable (default
``output/examples``), under ``01_simulate_and_clean/``.
"""

# %%
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from bayesbio import eda
from bayesbio.clean import clean
from bayesbio.simulate import simulate_batches

out_dir = Path(os.environ.get("BAYESBIO_OUTPUT", "output/examples")) / "01_simulate_and_clean"

# %% [markdown]
# 500 batches of plant history with the default defect rates: missing values, duplicates,
# impossible values, unit slips (kelvin, Fahrenheit, DO in mg/L), gross yield outliers and
# mistyped group labels. The simulator labels every defect it made.

# %%
sim = simulate_batches(500, design="historical", defects=True, random_seed=1)
print(sim.defects["defect"].value_counts().to_string())

# %% [markdown]
# Clean with the default policy (drop rows with missing values, flag outliers). Each action is
# one row of the audit log; the raw table is left as it was.

# %%
result = clean(sim.table)
log = result.log
print(
    f"{len(sim.table)} rows in, {len(result.table)} kept, "
    f"{(log['action'] == 'dropped').sum()} dropped"
)
print(log.groupby(["action", "column"], dropna=False).size().to_string())
print(log.head(10).to_string())

# %% [markdown]
# Every labelled defect should appear in the log.

# %%
found = sim.defects["row"].isin(log["row"]).groupby(sim.defects["defect"]).mean()
print(found.rename("share found").to_string())

# %% [markdown]
# An alternative policy: impute missing parameters with their group median and drop outliers.

# %%
strict = clean(sim.table, {"missing": "impute_group_median", "outliers": "drop"})
print(strict.log["action"].value_counts().to_string())

# %% [markdown]
# EDA of the cleaned table: a summary per scale and site, and figures saved as PNGs.

# %%
summary = eda.summarize(result.table, ["scale"])
print(summary[summary["column"] == "yield"].to_string(index=False))
eda_result = eda.run_eda(result.table, out_dir)
print("figures saved in", out_dir, ":", sorted(p.name for p in out_dir.glob("*.png")))
log.to_csv(out_dir / "audit_log.csv", index=False)
