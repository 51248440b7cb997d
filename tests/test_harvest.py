"""Properties of the harvest model (spec docs/harvest_model.md §7, items 1-6)."""

from itertools import pairwise

import numpy as np
import pytest
from scipy import stats

from bayesbio.harvest import (
    DEFAULT_PRIOR,
    NIG,
    RLMR,
    SCENARIOS,
    HarvestParams,
    HarvestState,
    KnowledgeState,
    ShockLaw,
    continuation,
    evaluate_policy,
    get_scenario,
    make_grid,
    make_policy,
    myopic_harvest_mask,
    nig_posterior,
    run_batch,
    simulate_trajectories,
    solve_pi,
)
from bayesbio.harvest import policies as policies_module
from bayesbio.harvest.mdp import true_laws
from bayesbio.harvest.operator import grid_operator, truncated_nodes

DEFAULT = SCENARIOS["default"]
HIGH = SCENARIOS["high_risk"]


@pytest.fixture(scope="module")
def pi_default():
    return solve_pi(DEFAULT)


# ---------------------------------------------------------------- §7.1 posterior


@pytest.mark.parametrize(
    "prior", [DEFAULT_PRIOR, NIG(0.2, 2.0, 3.0, 0.05), NIG(-0.1, 0.5, 1.5, 0.2)]
)
def test_batch_posterior_equals_repeated_one_point_updates(prior):
    x = np.random.default_rng(0).normal(0.3, 0.1, 12)
    batch = nig_posterior(x, prior)
    seq = prior
    for xi in x:
        seq = seq.update(xi)
    for name in ("alpha", "nu", "lam", "beta"):
        assert getattr(seq, name) == pytest.approx(getattr(batch, name), rel=1e-12, abs=1e-15)


def test_default_prior_posterior_and_plug_in_are_sample_statistics():
    x = np.array([0.21, 0.35, 0.28, 0.40])
    post = nig_posterior(x)
    n, xbar, s2 = x.size, x.mean(), x.var(ddof=1)
    assert (post.alpha, post.nu, post.lam) == pytest.approx((xbar, n, (n - 1) / 2))
    assert post.beta == pytest.approx((n - 1) * s2 / 2, rel=1e-12)
    mu_hat, sigma_hat = post.plug_in()
    assert mu_hat == pytest.approx(xbar) and sigma_hat == pytest.approx(np.sqrt(s2))


def test_closed_form_posterior_matches_brute_force_grid_posterior():
    prior = NIG(0.2, 2.0, 3.0, 0.05)
    x = np.array([0.31, 0.12, 0.45, 0.27])
    post = nig_posterior(x, prior)
    mu = np.linspace(-0.6, 1.0, 801)[:, None]
    s2 = np.linspace(1e-4, 0.4, 1200)[None, :]
    log_prior = (
        -(prior.lam + 1) * np.log(s2)
        - prior.beta / s2  # inverse gamma
        - 0.5 * np.log(s2)
        - prior.nu * (mu - prior.alpha) ** 2 / (2 * s2)
    )
    log_lik = -x.size / 2 * np.log(s2) - ((x[None, None, :] - mu[..., None]) ** 2).sum(-1) / (
        2 * s2
    )
    w = np.exp(log_prior + log_lik - (log_prior + log_lik).max())
    w /= w.sum()
    e_mu = (w * mu).sum()
    e_s2 = (w * s2).sum()
    var_mu = (w * (mu - e_mu) ** 2).sum()
    assert e_mu == pytest.approx(post.alpha, abs=1e-4)
    assert e_s2 == pytest.approx(post.beta / (post.lam - 1), rel=2e-3)
    assert var_mu == pytest.approx(post.beta / (post.nu * (post.lam - 1)), rel=5e-3)


def test_knowledge_state_updates_both_rates_and_matches_batch_posterior():
    rng = np.random.default_rng(1)
    phi, psi = rng.normal(0.3, 0.1, 5), rng.normal(0.25, 0.15, 5)
    k = KnowledgeState.from_data(phi[:3], psi[:3])
    k = k.update(phi[3], psi[3]).update(phi[4], psi[4])
    full = KnowledgeState.from_data(phi, psi)
    assert k.protein.alpha == pytest.approx(full.protein.alpha, rel=1e-12)
    assert k.impurity.beta == pytest.approx(full.impurity.beta, rel=1e-12)
    with pytest.raises(AttributeError):
        k.protein = full.protein  # frozen


# ---------------------------------------------------------------- §7.2 predictive


@pytest.mark.parametrize("n", [3, 8])
def test_student_t_predictive_matches_monte_carlo_from_nig(n):
    x = np.random.default_rng(n).normal(0.25, 0.15, n)
    post = nig_posterior(x)
    rng = np.random.default_rng(42)
    mu, sigma = post.thompson(rng, 100_000)
    draws = mu + sigma * rng.standard_normal(100_000)
    df, loc, scale = post.predictive_params()
    assert df == n - 1 and loc == pytest.approx(x.mean())
    assert scale**2 == pytest.approx(x.var(ddof=1) * (1 + 1 / n))
    assert stats.kstest(draws, post.predictive().cdf).pvalue > 0.001
    if post.lam > 1:
        inherent, model_risk = post.predictive_variance_split()
        assert post.predictive().var() == pytest.approx(inherent + model_risk, rel=1e-10)
        assert np.median(draws) == pytest.approx(post.alpha, abs=0.01)


# ---------------------------------------------------------------- §7.3 operator


def _mc_continue_one_step(params, phi, psi, p, i):
    p1, i1 = p * np.exp(phi), i * np.exp(psi)
    harvest = params.r * np.minimum(p1, params.p_bar) - params.c * i1
    return -params.c_u + np.where(i1 > params.i_bar, -params.r_f, harvest)


@pytest.mark.parametrize(
    ("law", "p", "i"),
    [("normal", 20.0, 10.0), ("normal", 45.0, 35.0), ("t", 20.0, 10.0), ("t", 30.0, 20.0)],
)
def test_operator_on_reward_matches_monte_carlo(law, p, i):
    rng = np.random.default_rng(7)
    m = 1_000_000
    if law == "normal":
        law_p, law_i = true_laws(DEFAULT)
        phi = DEFAULT.mu_p + DEFAULT.sigma_p * rng.standard_normal(m)
        psi = DEFAULT.mu_i + DEFAULT.sigma_i * rng.standard_normal(m)
    else:
        kn = KnowledgeState.from_data([0.25, 0.4, 0.3], [0.1, 0.3, 0.35])  # df = 2
        law_p = ShockLaw.student_t(*kn.protein.predictive_params())
        law_i = ShockLaw.student_t(*kn.impurity.predictive_params())
        phi = kn.protein.predictive().rvs(m, random_state=rng)
        psi = kn.impurity.predictive().rvs(m, random_state=rng)
    y = _mc_continue_one_step(DEFAULT, phi, psi, p, i)
    exact = float(continuation(DEFAULT, law_p, law_i, p, i))
    assert abs(exact - y.mean()) < 4 * y.std() / np.sqrt(m)


@pytest.mark.parametrize(("mu", "sigma", "a"), [(0.3, 0.1, 1.2), (0.3, 0.1, 0.05), (0.1, 0.6, 0.4)])
def test_truncated_lognormal_mean_is_exact(mu, sigma, a):
    law = ShockLaw.normal(mu, sigma)
    prob, nodes, w = truncated_nodes(law, np.asarray(a), 16)
    quad = np.exp(nodes) @ w
    exact = np.exp(mu + sigma**2 / 2) * stats.norm.cdf((a - mu - sigma**2) / sigma) / prob
    tol = 1e-4 if (mu, sigma) == (0.3, 0.1) else 2e-3
    assert quad == pytest.approx(exact, rel=tol)


def test_grid_operator_equals_point_operator_on_grid_points(pi_default):
    grid = make_grid(DEFAULT)
    law_p, law_i = true_laws(DEFAULT)
    op = grid_operator(DEFAULT, law_p, law_i, grid)
    values = pi_default.values[8]
    on_grid = op.apply(values)
    rows, cols = np.array([5, 40, 77, 99]), np.array([3, 50, 90, 100])
    p, i = np.exp(grid.u[rows]), np.exp(grid.v[cols])
    point = continuation(DEFAULT, law_p, law_i, p, i, values, grid=grid)
    np.testing.assert_allclose(point, on_grid[rows, cols], rtol=1e-12)
    # M laws batched give the same numbers as one at a time
    laws = ShockLaw.normal(np.array([0.3, 0.2]), np.array([0.1, 0.2])), law_i
    batched = grid_operator(DEFAULT, *laws, grid).apply(np.stack([values, values]))
    single = grid_operator(DEFAULT, ShockLaw.normal(0.2, 0.2), law_i, grid).apply(values)
    np.testing.assert_allclose(batched[1], single, rtol=1e-12)
    np.testing.assert_allclose(batched[0], on_grid, rtol=1e-12)


# ---------------------------------------------------------------- §7.4 PI solution


def test_pi_value_matches_reference_and_is_grid_stable(pi_default):
    assert pi_default.value0 == pytest.approx(345.1, abs=1.5)
    fine = solve_pi(DEFAULT, n_grid=201)
    assert abs(fine.value0 - pi_default.value0) < 1.0
    assert solve_pi(HIGH).value0 == pytest.approx(239.0, abs=1.5)


def test_exact_common_practice_value_matches_reference_and_monte_carlo():
    n = DEFAULT.n_grid
    assert evaluate_policy(DEFAULT, np.zeros((n, n), bool))[0] == pytest.approx(251.2, abs=1.0)
    assert evaluate_policy(HIGH, np.zeros((n, n), bool))[0] == pytest.approx(116.4, abs=1.0)


@pytest.mark.parametrize("name", ["default", "high_risk"])
def test_pi_values_monotone_and_harvest_sets_are_upper_intervals_in_impurity(name):
    sol = solve_pi(SCENARIOS[name])
    assert (np.diff(sol.values, axis=1) >= -1e-9).all()  # non-decreasing in protein
    assert (np.diff(sol.values, axis=2) <= 1e-9).all()  # non-increasing in impurity
    harvest = sol.harvest[: SCENARIOS[name].T].astype(int)
    assert (np.diff(harvest, axis=2) >= 0).all()  # control limit in i for every (t, p)


def test_myopic_pi_is_nearly_optimal(pi_default):
    value = evaluate_policy(DEFAULT, myopic_harvest_mask(DEFAULT, *true_laws(DEFAULT)))[0]
    assert abs(value - pi_default.value0) < 0.5


# ---------------------------------------------------------------- §7.5 optimality (exact)


def test_pi_exact_value_dominates_other_exactly_evaluable_policies(pi_default):
    n = DEFAULT.n_grid
    v_pi = pi_default.value0
    assert v_pi >= evaluate_policy(DEFAULT, np.zeros((n, n), bool))[0]
    assert v_pi >= evaluate_policy(DEFAULT, myopic_harvest_mask(DEFAULT, *true_laws(DEFAULT)))[0]
    rng = np.random.default_rng(3)
    for _ in range(6):
        z = rng.standard_normal((3, 2))
        kn = KnowledgeState.from_data(0.3 + 0.1 * z[:, 0], 0.25 + 0.15 * z[:, 1])
        static = make_policy("plug-in-static", DEFAULT, knowledge=kn)
        assert v_pi >= evaluate_policy(DEFAULT, static.solution.harvest)[0] - 1e-9


def test_common_practice_stops_only_at_cap_horizon_or_failure():
    cp = make_policy("CP", DEFAULT)
    rng = np.random.default_rng(5)
    for _ in range(50):
        out = run_batch(cp, DEFAULT, rng.standard_normal((DEFAULT.T, 2)))
        assert out.failed or out.harvest_epoch == DEFAULT.T or out.p_final >= DEFAULT.p_bar
        assert not out.failed or out.i_final > DEFAULT.i_bar


def test_policies_harvest_in_forced_states():
    kn = KnowledgeState.typical(0.3, 0.1, 0.25, 0.15, 5)
    for name in ("PI-MDP", "CP", "myopic", "myopic-PI", "plug-in", "plug-in-static", "RL-MR"):
        pol = make_policy(name, DEFAULT, knowledge=kn, random_seed=0)
        assert pol.decide(HarvestState(DEFAULT.T, 3.0, 2.0, kn)) == 1
        assert pol.decide(HarvestState(5, DEFAULT.p_bar, 2.0, kn)) == 1
        assert pol.decide(HarvestState(0, 1.0, 1.0, kn)) == 0


# ---------------------------------------------------------------- RL-MR


def test_rlmr_shortcut_gives_the_same_decisions_as_full_computation(monkeypatch):
    rng = np.random.default_rng(11)
    runs = []
    for _ in range(6):
        z_hist, z = rng.standard_normal((3, 2)), rng.standard_normal((HIGH.T, 2))
        kn = KnowledgeState.from_data(0.3 + 0.1 * z_hist[:, 0], 0.25 + 0.25 * z_hist[:, 1])
        runs.append((kn, z))
    fast = [
        run_batch(RLMR(HIGH, n_draws=8, random_seed=s), HIGH, z, kn)
        for s, (kn, z) in enumerate(runs)
    ]
    monkeypatch.setattr(policies_module, "_MARGIN", np.inf)  # never take the shortcut
    full = [
        run_batch(RLMR(HIGH, n_draws=8, random_seed=s), HIGH, z, kn)
        for s, (kn, z) in enumerate(runs)
    ]
    assert fast == full


def test_rlmr_with_one_sure_draw_behaves_like_pi_mdp(pi_default):
    # a huge-n knowledge state concentrates the Thompson draws on the truth
    kn = KnowledgeState.typical(DEFAULT.mu_p, DEFAULT.sigma_p, DEFAULT.mu_i, DEFAULT.sigma_i, 10**7)
    p = np.geomspace(2, DEFAULT.p_bar, 8, endpoint=False)
    rl = RLMR(DEFAULT, random_seed=1, n_threshold_draws=4).threshold(12, p, kn)
    ref = make_policy("PI-MDP", DEFAULT).threshold(12, p)
    np.testing.assert_allclose(rl, ref, rtol=1e-4)


def test_rlmr_sparse_sampling_depth_two_runs_and_is_seeded():
    kn = KnowledgeState.typical(0.3, 0.1, 0.25, 0.15, 3)
    state = HarvestState(13, 30.0, 20.0, kn)
    a = RLMR(DEFAULT, n_draws=4, depth=2, children=3, random_seed=5)
    b = RLMR(DEFAULT, n_draws=4, depth=2, children=3, random_seed=5)
    qa = a.continuation_function(13, kn)(np.asarray(30.0), np.asarray(20.0))
    qb = b.continuation_function(13, kn)(np.asarray(30.0), np.asarray(20.0))
    assert float(qa) == float(qb) and np.isfinite(qa)
    assert a.decide(state) in (0, 1)


# ---------------------------------------------------------------- §7.6 learning


def test_thresholds_approach_perfect_information_as_data_grow():
    p = np.geomspace(2, DEFAULT.p_bar, 40, endpoint=False)
    ref = make_policy("PI-MDP", DEFAULT).threshold(12, p)
    ref_myopic = make_policy("myopic-PI", DEFAULT).threshold(12, p)
    gaps_rl, gaps_my = [], []
    for n in (3, 10, 30, 100):
        kn = KnowledgeState.typical(0.3, 0.1, 0.25, 0.15, n)
        gaps_rl.append(np.abs(RLMR(DEFAULT, random_seed=2024).threshold(12, p, kn) - ref).max())
        gaps_my.append(
            np.abs(make_policy("myopic", DEFAULT).threshold(12, p, kn) - ref_myopic).max()
        )
    assert all(b < a for a, b in pairwise(gaps_rl))
    assert all(b < a for a, b in pairwise(gaps_my))
    assert gaps_rl[-1] < 0.5 and gaps_my[-1] < 0.5


def test_threshold_is_a_control_limit_of_decide():
    kn = KnowledgeState.typical(0.3, 0.1, 0.25, 0.15, 10)
    for name in ("PI-MDP", "myopic", "plug-in"):
        pol = make_policy(name, DEFAULT, knowledge=kn)
        i_star = float(pol.threshold(12, 25.0, kn)[0])
        assert pol.decide(HarvestState(12, 25.0, i_star * 1.001, kn)) == 1
        assert pol.decide(HarvestState(12, 25.0, i_star * 0.999, kn)) == 0


def test_plug_in_static_exact_gap_shrinks_with_data(pi_default):
    rng = np.random.default_rng(9)
    z = rng.standard_normal((12, 100, 2))
    gaps = []
    for n in (3, 10, 30, 100):
        vals = []
        for zz in z:
            kn = KnowledgeState.from_data(0.3 + 0.1 * zz[:n, 0], 0.25 + 0.15 * zz[:n, 1])
            sol = make_policy("plug-in-static", DEFAULT, knowledge=kn).solution
            vals.append(evaluate_policy(DEFAULT, sol.harvest)[0])
        gaps.append(pi_default.value0 - np.mean(vals))
    assert all(b < a for a, b in pairwise(gaps))
    assert gaps[0] > 3 and gaps[-1] < 1


# ---------------------------------------------------------------- growth


def test_trajectories_follow_the_growth_model_and_recover_the_truth():
    traj = simulate_trajectories(DEFAULT, 400, random_seed=3)
    again = simulate_trajectories(DEFAULT, 400, random_seed=3)
    assert traj.equals(again)
    first = traj[traj["batch"] == 0].reset_index(drop=True)
    logp = np.log(first["protein"].to_numpy())
    np.testing.assert_allclose(np.diff(logp), first["phi"].to_numpy()[:-1], rtol=1e-10)
    failed = traj[traj["failed"]]
    assert (failed["impurity"] > DEFAULT.i_bar).all()
    ends = traj.groupby("batch").tail(1)
    assert (ends["failed"] | ends["harvested"]).all()
    ok = ends[~ends["failed"]]
    assert ((ok["epoch"] == DEFAULT.T) | (ok["protein"] >= DEFAULT.p_bar)).all()
    assert (traj.groupby("batch")["failed"].sum() <= 1).all()
    kn = KnowledgeState.from_trajectories(traj)
    mu_p, s_p, mu_i, s_i = kn.plug_in()
    assert mu_p == pytest.approx(0.30, abs=0.01) and s_p == pytest.approx(0.10, abs=0.01)
    assert mu_i == pytest.approx(0.25, abs=0.01) and s_i == pytest.approx(0.15, abs=0.01)


# ---------------------------------------------------------------- bad input


def test_bad_input_raises_value_errors_naming_the_argument():
    with pytest.raises(ValueError, match="sigma_p"):
        HarvestParams(sigma_p=-0.1)
    with pytest.raises(ValueError, match="i_bar"):
        HarvestParams(i_bar=0.0)
    with pytest.raises(ValueError, match=r"'phi'.*n >= 2"):
        KnowledgeState.from_data([0.3], [0.2, 0.25])
    with pytest.raises(ValueError, match="'x'"):
        nig_posterior([0.3])
    with pytest.raises(ValueError, match="'n'"):
        KnowledgeState.typical(0.3, 0.1, 0.25, 0.15, 1)
    with pytest.raises(ValueError, match=r"'name'.*unknown policy 'oracle'"):
        make_policy("oracle", DEFAULT)
    with pytest.raises(ValueError, match=r"'scenario'.*'nominal'"):
        get_scenario("nominal")
    with pytest.raises(ValueError, match="'knowledge'"):
        make_policy("plug-in-static", DEFAULT)
    with pytest.raises(ValueError, match="'n_draws'"):
        RLMR(DEFAULT, n_draws=0)
    with pytest.raises(ValueError, match="'state'"):
        make_policy("myopic", DEFAULT).decide(HarvestState(3, 2.0, 2.0))
    with pytest.raises(ValueError, match="'z'"):
        run_batch(make_policy("CP", DEFAULT), DEFAULT, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="'n_batches'"):
        simulate_trajectories(DEFAULT, 0)
    with pytest.raises(ValueError, match="no control limit"):
        make_policy("CP", DEFAULT).threshold(3, 10.0)
