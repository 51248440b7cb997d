"""Fake fitted models with known posteriors, shared by the tests."""

import numpy as np


class Parabola:
    """A fake fitted model of the two-factor space with a known posterior.

    Mean titer under draw s: ``top_s - 0.2 (T - vertex_s)^2 + 0.001 agitation``; the vertex has
    posterior SD ``vertex_sd`` around 31 degC. New-batch noise is Normal(0, 0.3).
    """

    def __init__(self, space, table, *, vertex_sd=0.5, seed=0, heavy_tails=False):
        rng = np.random.default_rng(seed)
        self.vertex = 31.0 + vertex_sd * rng.standard_normal(4000)
        self.top = 2.0 + 0.05 * rng.standard_normal(4000)
        self.space_ = space
        self.training_table_ = table
        self.groups_ = ["site"]
        self.calls = []
        self.heavy_tails = heavy_tails

    def predict_draws(self, X, *, n_draws=1000, noise=True, kind="existing", random_seed=None):
        self.calls.append((len(X), noise, kind))
        rng = np.random.default_rng(random_seed)
        idx = rng.integers(len(self.top), size=n_draws)
        t = X["temperature"].to_numpy(dtype=float)
        a = X["agitation"].to_numpy(dtype=float)
        mu = self.top[idx, None] - 0.2 * (t[None, :] - self.vertex[idx, None]) ** 2 + 0.001 * a
        if noise and self.heavy_tails:
            mu = mu * np.exp(np.clip(0.3 * rng.standard_t(1.0, size=mu.shape), -10.0, 10.0))
        elif noise:
            mu = mu + 0.3 * rng.standard_normal(mu.shape)
        return mu
