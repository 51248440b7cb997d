import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline

from bayesbio.features import DomainScaler, GroupEncoder, PolynomialTerms, YieldFeatures
from bayesbio.schema import SchemaError
from bayesbio.space import ProcessSpace

SPACE = ProcessSpace.default()
FACTORS = list(SPACE.factor_names)


def make_table(n=40, seed=0, n_campaigns=3):
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({p: rng.uniform(*SPACE.bounds[p], n) for p in FACTORS})
    table["scale"] = rng.choice(["2L", "200L"], n)
    table["site"] = rng.choice(["A", "B", "C"], n)
    table["campaign"] = [f"C{i:02d}" for i in rng.integers(0, n_campaigns, n)]
    table["yield"] = 5 + 0.2 * (table["temperature"] - 35) + rng.normal(0, 0.1, n)
    return table


def test_domain_scaler_remembers_centre_and_scale_in_domain_units():
    table = make_table()
    scaler = DomainScaler().fit(table)
    z = scaler.transform(table)
    assert list(z.columns) == FACTORS
    np.testing.assert_allclose(scaler.center_, table[FACTORS].mean())
    np.testing.assert_allclose(scaler.scale_, table[FACTORS].std(ddof=1))
    np.testing.assert_allclose(z.mean(), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(ddof=1), 1.0)
    assert scaler.units_["temperature"] == "degC"
    assert "degC" in z.attrs["units"]["temperature"]
    back = scaler.inverse_transform(z)
    np.testing.assert_allclose(back.to_numpy(), table[FACTORS].to_numpy())
    back_array = scaler.inverse_transform(z.to_numpy())
    np.testing.assert_allclose(back_array.to_numpy(), table[FACTORS].to_numpy())
    assert list(scaler.get_feature_names_out()) == FACTORS


def test_domain_scaler_constant_column_gets_unit_scale():
    table = make_table()
    table["ph"] = 7.0
    scaler = DomainScaler().fit(table)
    assert scaler.scale_["ph"] == 1.0
    assert np.isfinite(scaler.transform(table).to_numpy()).all()


def test_polynomial_terms_names_and_values():
    X = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, -1.0]})
    poly = PolynomialTerms().fit(X)
    out = poly.transform(X)
    assert list(out.columns) == ["a", "b", "a^2", "b^2", "a*b"]
    np.testing.assert_allclose(out["a*b"], [3.0, -2.0])
    np.testing.assert_allclose(out["b^2"], [9.0, 1.0])
    linear = PolynomialTerms(quadratic=False, interactions=False).fit(X)
    assert list(linear.get_feature_names_out()) == ["a", "b"]


def test_group_encoder_one_hot_for_few_levels_and_zero_for_unseen():
    table = make_table()
    enc = GroupEncoder().fit(table)
    assert enc.encoding_ == {"scale": "onehot", "site": "onehot", "campaign": "onehot"}
    names = list(enc.get_feature_names_out())
    assert "site=A" in names and "scale=200L" in names
    new = table.head(2).assign(site="Z")
    out = enc.transform(new)
    assert (out[[c for c in names if c.startswith("site=")]].to_numpy() == 0).all()


def test_group_encoder_target_encoding_is_cross_fitted_and_does_not_leak():
    table = make_table(n=60, n_campaigns=20)
    enc = GroupEncoder(max_onehot=5, random_state=3)
    first = enc.fit_transform(table)
    assert enc.encoding_["campaign"] == "target"
    assert "campaign~target" in first.columns
    # changing batch 0's own yield must not change its cross-fitted encoding
    shifted = table.copy()
    shifted.loc[0, "yield"] = 1000.0
    second = GroupEncoder(max_onehot=5, random_state=3).fit_transform(shifted)
    assert second.loc[0, "campaign~target"] == pytest.approx(first.loc[0, "campaign~target"])
    # ... whereas the full-data encoder (used for new rows) does see it
    full = GroupEncoder(max_onehot=5, random_state=3).fit(shifted).transform(shifted.head(1))
    assert full.loc[0, "campaign~target"] != pytest.approx(first.loc[0, "campaign~target"])


def test_group_encoder_target_encoding_without_y_names_the_column():
    table = make_table(n_campaigns=20).drop(columns="yield")
    with pytest.raises(ValueError, match="campaign"):
        GroupEncoder(max_onehot=3).fit(table)


def test_yield_features_work_in_a_pipeline_with_feature_names():
    table = make_table()
    pipe = Pipeline([("features", YieldFeatures()), ("ols", LinearRegression())])
    pipe.fit(table, table["yield"])
    pred = pipe.predict(table)
    assert pred.shape == (len(table),)
    names = list(pipe[:-1].get_feature_names_out())
    assert names[:4] == FACTORS
    assert "temperature^2" in names and "temperature*ph" in names and "site=B" in names
    assert len(names) == 4 + 4 + 6 + 2 + 3 + 3


def test_yield_features_error_names_missing_column():
    table = make_table()
    feats = YieldFeatures().fit(table)
    with pytest.raises(SchemaError, match="'ph'"):
        feats.transform(table.drop(columns="ph"))
    with pytest.raises(TypeError, match="DataFrame"):
        YieldFeatures().fit(table.to_numpy())


def test_yield_features_groups_empty_tuple_means_no_group_columns():
    table = make_table()
    feats = YieldFeatures(groups=(), quadratic=False, interactions=False).fit(table)
    assert list(feats.get_feature_names_out()) == FACTORS


def test_fitted_transformers_carry_the_space(space_k2, table_k2):
    feats = YieldFeatures(space=space_k2).fit(table_k2)
    assert feats.space_ is space_k2 and feats.scaler_.space_ is space_k2
    assert feats.parameters_ == ["temperature", "agitation"]
    assert feats.scaler_.units_ == {"temperature": "degC", "agitation": "rpm"}
    names = list(feats.get_feature_names_out())
    assert names == [
        "temperature",
        "agitation",
        "temperature^2",
        "agitation^2",
        "temperature*agitation",
        "site=North",
        "site=South",
    ]
    assert clone(feats).get_params()["space"] == space_k2


def test_features_work_for_a_single_factor_without_interactions(space_k2, table_k2):
    space = space_k2.with_factors(["agitation"])
    feats = YieldFeatures(space=space).fit(table_k2)
    assert list(feats.get_feature_names_out()) == [
        "agitation",
        "agitation^2",
        "site=North",
        "site=South",
    ]
    out = feats.transform(table_k2.head(3))
    assert out.shape == (3, 4) and np.isfinite(out.to_numpy()).all()


def test_group_encoder_targets_the_space_response(space_k2, table_k2):
    table = table_k2.assign(site=[f"S{i % 12}" for i in range(len(table_k2))])
    enc = GroupEncoder(space=space_k2, max_onehot=5, random_state=0).fit(table)
    assert enc.encoding_ == {"site": "target"}
    assert enc.space_ is space_k2
    with pytest.raises(ValueError, match="site"):
        GroupEncoder(space=space_k2, max_onehot=5).fit(table.drop(columns="titer"))
