"""Jermyn et al.'s model family: forward pass, data, loss, training rules and validation.

Every expected number here is computed independently in NumPy from the definitions in their code
(`model3.py`: `make_random_embedder`, the samplers, `loss_func`, the L1 term, the bias decay).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import toymodels as tm
from toymodels.config import JERMYN_KINDS
from toymodels.train import JermynSwept, decay_bias, make_trainer

N, M, K = 12, 4, 10
TRAIN = tm.TrainConfig(steps=40, batch_size=64, log_every=20, lr=0.01)


def config(kind="jermyn_autoencoder", **kw):
    return tm.ToyModelConfig(**{"kind": kind, "n_features": N, "d_embed": M, "d_hidden": K,
                                "feature_probability": 0.25, **kw})


def np_activation(name, z):
    from scipy.special import erf

    return {"relu": lambda z: np.maximum(z, 0), "gelu": lambda z: 0.5 * z * (1 + erf(z / np.sqrt(2))),
            "solu": lambda z: z * np.exp(z)}[name](z.astype(np.float64))


def params_of(trainer, swept):
    state = trainer.init(swept)
    return state, {k: np.asarray(v, np.float64) for k, v in nnx.to_pure_dict(state.params).items()}


@pytest.mark.parametrize("kind", JERMYN_KINDS)
@pytest.mark.parametrize("activation", ["relu", "gelu", "solu"])
def test_loss_and_forward_equal_numpy(kind, activation):
    model = config(kind, activation=activation, l1_coefficient=0.3, init_bias=-0.2)
    trainer = make_trainer(model, TRAIN)
    swept = tm.Swept.from_configs(model, TRAIN)
    state, p = params_of(trainer, swept)
    u = trainer.source.draw(jax.random.key(3), 64)
    batch = trainer.source.batch(u, swept)

    # The data, from the same uniforms: one draw gates and scales (u < p: magnitude u / p).
    q = model.draw_probabilities()[:, None]
    un = np.asarray(u, np.float64)
    v = np.where(un[0] < q, un[0] / q, 0.0)
    if kind == "jermyn_abs":
        v = v - np.where(un[1] < q, un[1] / q, 0.0)
    U = model.embeddings().astype(np.float64)
    target = {"jermyn_autoencoder": v, "jermyn_abs": np.abs(v),
              "jermyn_random_projection": U[-1].T @ v}[kind]
    np.testing.assert_allclose(batch.inputs, U[0].T @ v, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(batch.target, target, rtol=1e-5, atol=1e-5)

    # The model, in the row-vector form of their torch Sequential, on the embedded inputs.
    x = (U[0].T @ v).T
    h = np_activation(activation, x @ p["W_in"] + p["b_in"])
    out = h @ p["W_out"]
    module = nnx.merge(trainer.graphdef, state.params)
    np.testing.assert_allclose(np.asarray(module(jnp.asarray(x.T, jnp.float32))).T, out,
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(module(jnp.asarray(x[0], jnp.float32))), out[0],
                               rtol=1e-4, atol=1e-5)

    loss = np.sum((out - target.T) ** 2) / 64
    l1 = np.sum(np.abs(h)) / 64
    total, (got_loss, got_l1) = trainer.objective(state.params, swept, batch)
    np.testing.assert_allclose(got_loss, loss, rtol=1e-4)
    np.testing.assert_allclose(got_l1, l1, rtol=1e-4)
    np.testing.assert_allclose(total, loss + 0.3 * l1, rtol=1e-4)


def test_init_is_torch_linear_plus_init_bias():
    model = config()
    trainer = make_trainer(model, TRAIN)
    swept = tm.Swept.from_configs(model, TRAIN)
    _, p = params_of(trainer, swept)
    _, shifted = params_of(trainer, swept._replace(init_bias=np.float32(-1.5)))
    assert p["W_in"].shape == (M, K) and p["b_in"].shape == (K,) and p["W_out"].shape == (K, N)
    # nn.Linear: weights and bias uniform on ±1/√fan_in.
    assert np.abs(p["W_in"]).max() <= M**-0.5 and np.abs(p["b_in"]).max() <= M**-0.5
    assert np.abs(p["W_out"]).max() <= K**-0.5
    assert p["W_in"].std() > 0.5 * M**-0.5 / np.sqrt(3)
    np.testing.assert_allclose(shifted["b_in"] - p["b_in"], -1.5, atol=1e-6)
    np.testing.assert_array_equal(shifted["W_in"], p["W_in"])


def test_embedding_has_unit_rows_its_own_seed_and_is_shared_by_the_grid():
    U = config("jermyn_random_projection").embeddings()
    assert U.shape == (2, N, M)
    np.testing.assert_allclose(np.linalg.norm(U, axis=-1), 1.0, rtol=1e-6)
    assert not np.allclose(U[0], U[1])
    # Their make_random_embedder: a Gaussian matrix's left singular vectors, rows normalised.
    rng = np.random.default_rng(0)
    for c in range(2):
        u = np.linalg.svd(rng.standard_normal((N, M)), full_matrices=False)[0]
        np.testing.assert_allclose(U[c], u / np.linalg.norm(u, axis=1, keepdims=True), atol=1e-6)
    np.testing.assert_array_equal(config(embedding_seed=3).embeddings(),
                                  config(embedding_seed=3, init_bias=-1.0).embeddings())
    assert not np.allclose(config(embedding_seed=3).embeddings(), config().embeddings())
    # Static: every point of a sweep (any seed, lr, ε …) sees one embedding, a constant.
    a = make_trainer(config(feature_probability=0.1), TRAIN)
    b = make_trainer(config(feature_probability=0.5, l1_coefficient=1.0), dataclasses.replace(TRAIN, lr=1.0, seed=4))
    assert a is b


def test_sweep_equals_python_loop_and_logs_both_terms():
    model = config("jermyn_abs", activation="gelu", l1_coefficient=0.01, bias_decay=0.5,
                   init_bias=-0.5)
    train = dataclasses.replace(TRAIN, schedule="cosine_annealing", annealing_steps=8)
    ds = tm.sweep(model, {"lr": [3e-3, 3e-2], "seed": [0, 1]}, train, progress=False)
    assert set(ds.data_vars) >= {"W_in", "b_in", "W_out", "loss", "hidden_l1", "loss_history"}
    assert ds.W_in.dims == ("lr", "seed", "embed", "hidden") and ds.W_out.dims[-1] == "feature"
    trainer = make_trainer(model, train)
    for lr in (3e-2,):
        t = dataclasses.replace(train, lr=lr, seed=1)
        params, history, _ = trainer.train(tm.Swept.from_configs(model, t))
        point = ds.sel(lr=lr, seed=1)
        np.testing.assert_allclose(point.W_in, params["W_in"], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(point.loss_history, history, rtol=1e-4, atol=1e-6)
    assert json_model(ds)["kind"] == "jermyn_abs"
    assert json_train(ds)["optimizer"] == "lamb" and json_train(ds)["weight_decay"] == 0.0
    assert json_train(ds)["eps"] == 1e-6


def json_model(ds):
    import json
    return json.loads(ds.attrs["model"])


def json_train(ds):
    import json
    return json.loads(ds.attrs["train"])


def test_bias_decay_scales_only_the_bias_and_only_in_the_first_half():
    model = config(bias_decay=2.0)
    train = dataclasses.replace(TRAIN, steps=6, log_every=6)
    trainer = make_trainer(model, train)
    decayed = tm.Swept.from_configs(model, train)
    plain = decayed._replace(bias_decay=np.float32(0.0))
    state = trainer.init(decayed)
    batch = trainer.source.batch(trainer.source.draw(jax.random.key(0), 64), decayed)
    factor = 1 - 2.0 * 0.01
    for t in range(6):
        a, _ = trainer.step(state, decayed, batch, jnp.int32(t))
        b, _ = trainer.step(state, plain, batch, jnp.int32(t))
        pa, pb = nnx.to_pure_dict(a.params), nnx.to_pure_dict(b.params)
        np.testing.assert_array_equal(pa["W_in"], pb["W_in"])
        np.testing.assert_array_equal(pa["W_out"], pb["W_out"])
        expected = pb["b_in"] * (factor if t < 3 else 1.0)
        np.testing.assert_allclose(pa["b_in"], expected, rtol=1e-6)
        assert (t >= 3) == bool(np.array_equal(pa["b_in"], pb["b_in"]))
        state = b


def test_decay_bias_touches_b_in_alone():
    params = {"W_in": jnp.ones((2, 3)), "b_in": jnp.ones(3), "W_out": jnp.ones((3, 2))}
    out = decay_bias(params, jnp.float32(0.5))
    np.testing.assert_array_equal(out["b_in"], 0.5)
    np.testing.assert_array_equal(out["W_in"], 1.0)


def test_width_sweep_pads_dead_neurons():
    model = config()
    train = dataclasses.replace(TRAIN, steps=20, log_every=20)
    ds = tm.sweep(model, {"d_hidden": [4, K], "seed": [0]}, train, progress=False)
    assert ds.W_in.dims == ("d_hidden", "seed", "embed", "hidden") and ds.sizes["hidden"] == K
    np.testing.assert_array_equal(ds.hidden_mask.sum("hidden"), [4, K])
    narrow = tm.sweep(dataclasses.replace(model, d_hidden=4), {"seed": [0]}, train, progress=False)
    np.testing.assert_allclose(ds.W_in.sel(d_hidden=4).isel(hidden=slice(0, 4)), narrow.W_in,
                               rtol=1e-5, atol=1e-6)
    assert not ds.W_in.sel(d_hidden=4).isel(hidden=slice(4, None)).any()
    np.testing.assert_allclose(ds.loss.sel(d_hidden=4), narrow.loss, rtol=1e-5)


def test_embedded_responses_push_one_hot_features_through_the_first_layer():
    model = config(activation="gelu")
    trainer = make_trainer(model, TRAIN)
    state, p = params_of(trainer, tm.Swept.from_configs(model, TRAIN))
    U = model.embeddings()[0]
    r = np.asarray(tm.analysis.embedded_neuron_responses(p["W_in"], p["b_in"], U, activation="gelu"))
    module = nnx.merge(trainer.graphdef, state.params)
    hidden = np.asarray(module.hidden(jnp.asarray(U.T)))  # (hidden, feature): one-hot v = e_i
    np.testing.assert_allclose(r, hidden.T, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="activation"):
        tm.analysis.embedded_neuron_responses(p["W_in"], p["b_in"], U, activation="tanh")


def test_recipes():
    jermyn = tm.TrainConfig().resolved(config().train_recipe)
    assert (jermyn.optimizer, jermyn.weight_decay, jermyn.eps) == ("lamb", 0.0, 1e-6)
    tms = tm.TrainConfig().resolved(tm.ToyModelConfig().train_recipe)
    assert (tms.optimizer, tms.weight_decay, tms.eps) == ("adamw", 0.01, 1e-8)
    assert tm.TrainConfig(optimizer="lamb").resolved(tm.ToyModelConfig().train_recipe).eps == 1e-6
    assert tm.TrainConfig(eps=1e-3).resolved(config().train_recipe).eps == 1e-3


@pytest.mark.parametrize("kwargs, field", [
    ({"d_embed": None}, "d_embed"),
    ({"d_embed": N + 1}, "d_embed"),
    ({"d_embed": 0}, "d_embed"),
    ({"activation": "tanh"}, "activation"),
    ({"l1_coefficient": -1.0}, "l1_coefficient"),
    ({"bias_decay": -0.1}, "bias_decay"),
    ({"init_bias": float("nan")}, "init_bias"),
    ({"embedding_seed": -1}, "embedding_seed"),
    ({"init_std": 0.1}, "init_std"),
    ({"importance_decay": 0.9}, "importance_decay"),
    ({"frequency_exponent": -1.0}, "frequency_exponent"),
    ({"frequency_exponent": float("inf")}, "frequency_exponent"),
    ({"frequency_exponent": 1.1, "feature_probability": [0.1] * N}, "feature_probability"),
])
def test_jermyn_config_errors_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        config(**kwargs)


@pytest.mark.parametrize("kwargs, field", [
    ({"d_embed": 2}, "d_embed"),
    ({"activation": "gelu"}, "activation"),
    ({"l1_coefficient": 0.1}, "l1_coefficient"),
    ({"init_bias": -1.0}, "init_bias"),
    ({"bias_decay": 0.1}, "bias_decay"),
    ({"embedding_seed": 2}, "embedding_seed"),
])
def test_jermyn_fields_are_refused_by_the_tms_kinds(kwargs, field):
    with pytest.raises(ValueError, match=field):
        tm.ToyModelConfig(n_features=4, d_hidden=2, **kwargs)


@pytest.mark.parametrize("kwargs, field", [
    ({"annealing_steps": 0}, "annealing_steps"),
    ({"schedule": "cosine_restarts"}, "schedule"),
    ({"eps": 0.0}, "eps"),
])
def test_train_config_errors_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        tm.TrainConfig(**kwargs)


@pytest.mark.parametrize("model, grid, field", [
    (config(), {"l1_coefficient": [0.1, -1.0]}, "l1_coefficient"),
    (config(), {"bias_decay": [float("nan")]}, "bias_decay"),
    (config(), {"d_hidden": [4, 0]}, "d_hidden"),
    (config(), {"frequency_exponent": [1.1, -2.0]}, "frequency_exponent"),
    (tm.ToyModelConfig(n_features=4, d_hidden=2), {"init_bias": [-1.0]}, "init_bias"),
    (tm.ToyModelConfig(n_features=4, d_hidden=2), {"d_hidden": [2, -1]}, "d_hidden"),
])
def test_bad_grid_fails_before_compiling(model, grid, field, monkeypatch):
    def no_compile(*args, **kwargs):
        raise AssertionError("compiled before validating")

    monkeypatch.setattr(jax, "jit", no_compile)
    with pytest.raises(ValueError, match=field):
        tm.sweep(model, grid, TRAIN, progress=False)


def test_swept_values():
    s = tm.Swept.from_configs(config("jermyn_abs", l1_coefficient=0.5, init_bias=-1.0,
                                     bias_decay=0.03, feature_probability=0.2), TRAIN)
    assert isinstance(s, JermynSwept)
    np.testing.assert_allclose(s.feature_probability, 0.1)  # each of v₁, v₂ at ε/2
    np.testing.assert_allclose([s.l1_coefficient, s.init_bias, s.bias_decay], [0.5, -1.0, 0.03])


def test_table1_configs_parse_and_are_not_run_by_default():
    from pathlib import Path

    from toymodels.experiment import Experiment

    folder = Path(__file__).parent.parent / "experiments"
    files = sorted((folder / "gpu").glob("jermyn_table1_*.toml"))
    assert len(files) == 4
    for f in files:
        exp = Experiment.from_toml(f)
        assert (exp.model.n_features, exp.model.d_embed, exp.model.d_hidden) == (512, 64, 1024)
        assert (exp.train.batch_size, exp.train.steps, exp.train.annealing_steps) == (8192, 2**17, 512)
        assert exp.model.feature_probability == 1 / 64 or "feature_probability" in exp.grid
    # `toymodels reproduce` runs experiments/*.toml, not the gpu/ folder.
    assert not any(p.name.startswith("jermyn_table1") for p in folder.glob("*.toml"))


def test_toy_activations_read_power_law_frequencies_and_refuse_jermyn_kinds():
    model = tm.ToyModelConfig(n_features=6, d_hidden=2, frequency_exponent=1.1)
    train = tm.TrainConfig(steps=10, batch_size=32, log_every=10)
    ds = tm.sweep(model, {"feature_probability": [0.1, 0.3]}, train, progress=False)
    acts = tm.ToyActivations(ds)
    for i, eps in enumerate([0.1, 0.3]):
        expected = dataclasses.replace(model, feature_probability=eps).probabilities()
        np.testing.assert_allclose(acts.point_values(i)["feature_probability"], expected, rtol=1e-6)
    jermyn = ds.assign_attrs(model=ds.attrs["model"].replace('"relu_output"', '"jermyn_autoencoder"')
                             .replace('"d_embed": null', '"d_embed": 2'))
    with pytest.raises(ValueError, match="jermyn"):
        tm.ToyActivations(jermyn)
