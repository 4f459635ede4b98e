"""SAEs through the sweep engine: labels, data sources, widths, errors before compiling."""

import jax
import numpy as np
import pytest

import toymodels as tm

TRUTH = tm.GroundTruth(d_in=8, n_features=12, mean_active=2.0, seed=0)
TRAIN = tm.TrainConfig(steps=40, batch_size=64, log_every=20)
SAE = tm.SAEConfig(d_in=8, d_sae=16)


@pytest.fixture(scope="module")
def base():
    return tm.sweep(SAE, {"l1_coefficient": [1e-3, 1e-1], "seed": [0, 1]}, TRAIN, data=TRUTH,
                    progress=False)


def test_dataset_layout(base):
    assert base.W_enc.dims == ("l1_coefficient", "seed", "d_in", "latent")
    assert base.W_dec.dims == ("l1_coefficient", "seed", "latent", "d_in")
    assert base.b_enc.dims == ("l1_coefficient", "seed", "latent")
    assert base.b_dec.dims == ("l1_coefficient", "seed", "d_in")
    assert base.W_dec.shape == (2, 2, 16, 8)
    for name in ("loss", "mse", "fvu", "l0", "diverged"):
        assert base[name].dims == ("l1_coefficient", "seed")
    assert base.loss_history.dims == ("l1_coefficient", "seed", "step")
    assert base.training_latent_density.dims == ("l1_coefficient", "seed", "latent")
    assert not base.diverged.any()
    assert '"architecture": "standard"' in base.attrs["sae"]
    assert '"optimizer": "adam"' in base.attrs["train"]  # SAELens's recipe


def test_sweep_point_independent_of_grid_and_chunking(base):
    alone = tm.sweep(SAE, {"l1_coefficient": [1e-1], "seed": [1]}, TRAIN, data=TRUTH,
                     progress=False)
    np.testing.assert_allclose(alone.W_dec[0, 0], base.W_dec.sel(l1_coefficient=1e-1, seed=1),
                               rtol=1e-4, atol=1e-5)
    chunked = tm.sweep(SAE, {"l1_coefficient": [1e-3, 1e-1], "seed": [0, 1]}, TRAIN, data=TRUTH,
                       chunk_size=2, progress=False)
    np.testing.assert_allclose(chunked.W_dec, base.W_dec, rtol=1e-4, atol=1e-5)
    one = tm.sweep(SAE, {"l1_coefficient": [1e-3, 1e-1], "seed": [0, 1]}, TRAIN, data=TRUTH,
                   devices=jax.devices()[:1], progress=False)
    np.testing.assert_allclose(one.W_dec, base.W_dec, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("architecture, extra", [
    ("standard", {}), ("topk", {"k": 3}), ("batchtopk", {"k": 3}), ("jumprelu", {}),
    ("gated", {}), ("matryoshka_batchtopk", {"k": 3, "matryoshka_widths": (2, 6, 16)}),
])
def test_every_architecture_trains(architecture, extra):
    sae = tm.SAEConfig(d_in=8, d_sae=16, architecture=architecture, **extra)
    ds = tm.sweep(sae, {"seed": [0, 1]}, tm.TrainConfig(steps=200, batch_size=128, lr=3e-3,
                                                        log_every=100), data=TRUTH, progress=False)
    assert not ds.diverged.any()
    assert (ds.mse_history[:, -1] < ds.mse_history[:, 0]).all()
    assert set(tm.sae.param_names(architecture)) <= set(ds.data_vars)
    if architecture == "topk":  # at most k fire (a top-k pre-activation ≤ 0 is ReLU'd away)
        assert (ds.l0 <= 3 + 1e-6).all() and (ds.l0 > 2.5).all()
    sae_point = tm.SAE.from_results(ds.isel(seed=0))
    assert sae_point.encode(TRUTH.dictionary).shape == (12, 16)


def test_toy_activations_one_sae_per_toy_model():
    toy = tm.sweep(tm.ToyModelConfig(n_features=5, d_hidden=2),
                   {"feature_probability": [1.0, 0.1], "seed": [0, 3]},
                   tm.TrainConfig(steps=100, batch_size=64, log_every=50), progress=False)
    data = tm.ToyActivations(toy)
    sae = tm.SAEConfig(d_in=2, d_sae=6)
    ds = tm.sweep(sae, {"l1_coefficient": [1e-3, 1e-2]}, TRAIN, data=data, progress=False)
    assert ds.W_dec.dims[:3] == ("toy_feature_probability", "toy_seed", "l1_coefficient")
    np.testing.assert_array_equal(ds.toy_seed, [0, 3])
    assert data.dictionary.dims == ("toy_feature_probability", "toy_seed", "feature", "hidden")
    score = tm.analysis.mmcs(ds.W_dec, data.dictionary)
    assert score.dims == ("toy_feature_probability", "toy_seed", "l1_coefficient")
    # One toy model alone gives the same SAE as the same toy model inside the grid.
    one = tm.sweep(sae, {"l1_coefficient": [1e-3, 1e-2]}, TRAIN,
                   data=tm.ToyActivations(toy.isel(feature_probability=1, seed=1)), progress=False)
    np.testing.assert_allclose(one.W_dec, ds.W_dec.isel(toy_feature_probability=1, toy_seed=1),
                               rtol=1e-4, atol=1e-5)


def test_host_data_iterable_matches_in_graph_batches():
    # The same batches handed in from the host train the same SAE as drawn in-graph.
    keys = [jax.random.fold_in(jax.random.split(jax.random.key(0))[1], t) for t in range(41)]
    batches = [np.asarray(TRUTH.sample(k, 64)) for k in keys]
    # The in-graph init batch is drawn at step `steps`; host data initialises on its first batch,
    # which is also its first training batch: compare without a data-dependent init.
    host = tm.sweep(SAE, {"seed": [0]}, TRAIN, data=batches[:40], progress=False)
    graph = tm.sweep(SAE, {"seed": [0]}, TRAIN, data=TRUTH, progress=False)
    np.testing.assert_allclose(host.W_dec, graph.W_dec, rtol=1e-4, atol=1e-5)


def test_host_data_rebatches_and_cycles():
    rows = np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32)
    pieces = [rows[i:i + 50] for i in range(0, 300, 50)]  # 50-row pieces, batch 64, cycled
    ds = tm.sweep(SAE, {"seed": [0, 1]}, TRAIN, data=pieces, progress=False)
    assert not ds.diverged.any()


def test_widths_are_padded_with_a_mask():
    ds = tm.sweep(tm.SAEConfig(d_in=8, d_sae=4, architecture="topk", k=2),
                  {"d_sae": [4, 16], "k": [1, 2], "seed": [0]}, TRAIN, data=TRUTH, progress=False)
    assert ds.W_dec.dims == ("d_sae", "k", "seed", "latent", "d_in")
    assert ds.sizes["latent"] == 16
    np.testing.assert_array_equal(ds.latent_mask.sum("latent"), [4, 16])
    narrow = ds.sel(d_sae=4, k=2).isel(seed=0)
    assert float(abs(narrow.W_dec.isel(latent=slice(4, None))).max()) == 0.0
    sae = tm.SAE.from_results(narrow)
    assert sae.d_sae == 4 and sae.config.k == 2
    parts = tm.split_widths(ds)
    assert sorted(parts) == [4, 16] and parts[4].sizes["latent"] == 4
    assert (ds.l0.sel(k=1) <= 1 + 1e-6).all()


@pytest.mark.parametrize("make, field", [
    (lambda: tm.SAEConfig(d_in=0, d_sae=4), "d_in"),
    (lambda: tm.SAEConfig(d_in=4, d_sae=0), "d_sae"),
    (lambda: tm.SAEConfig(d_in=4, d_sae=4, architecture="relu"), "architecture"),
    (lambda: tm.SAEConfig(d_in=4, d_sae=4, architecture="topk", k=5), "k"),
    (lambda: tm.SAEConfig(d_in=4, d_sae=4, architecture="topk", k=0), "k"),
    (lambda: tm.SAEConfig(d_in=4, d_sae=4, architecture="topk"), "k"),
    (lambda: tm.SAEConfig(d_in=4, d_sae=4, k=2), "k"),
    (lambda: tm.SAEConfig(d_in=4, d_sae=4, l1_coefficient=-1.0), "l1_coefficient"),
    (lambda: tm.GroundTruth(d_in=4, n_features=8, mean_active=9.0), "mean_active"),
])
def test_config_errors_name_the_field(make, field):
    with pytest.raises(ValueError, match=field):
        make()


@pytest.mark.parametrize("config, grid, data, field", [
    (tm.SAEConfig(d_in=4, d_sae=8), {}, TRUTH, "d_in"),
    (SAE, {}, None, "data"),
    (SAE, {"l1_coefficient": [0.1, -1.0]}, TRUTH, "l1_coefficient"),
    (SAE, {"k": [2]}, TRUTH, "k"),
    (tm.SAEConfig(d_in=8, d_sae=8, architecture="topk", k=2), {"k": [2, 9]}, TRUTH, "k"),
    (tm.SAEConfig(d_in=8, d_sae=8, architecture="topk", k=2), {"l1_coefficient": [0.1]}, TRUTH,
     "l1_coefficient"),
    (SAE, {}, [np.zeros((4, 5), np.float32)], "d_in"),
    (SAE, {"n_features": [3]}, TRUTH, "n_features"),
])
def test_bad_sae_sweeps_fail_before_compiling(config, grid, data, field, monkeypatch):
    def no_compile(*args, **kwargs):
        raise AssertionError("compiled before validating")

    monkeypatch.setattr(jax, "jit", no_compile)
    with pytest.raises(ValueError, match=field):
        tm.sweep(config, grid, TRAIN, data=data)


def test_toy_sweep_refuses_data():
    with pytest.raises(ValueError, match="data"):
        tm.sweep(tm.ToyModelConfig(), {}, TRAIN, data=TRUTH)


def test_host_data_reads_only_the_batches_it_trains_on():
    # The reader thread runs ahead of training; it must stop at the chunk's last segment, not
    # read (and throw away) segments past it.
    rows = np.random.default_rng(0).normal(size=(500, 8)).astype(np.float32)

    class Counting:
        drawn = 0

        def batches(self, batch_size, seed=0):
            rng = np.random.default_rng(seed)
            while True:
                Counting.drawn += 1
                yield rows[rng.integers(0, len(rows), batch_size)]

        def describe(self):
            return {"name": "counting"}

    train = tm.TrainConfig(steps=200, batch_size=16, log_every=10)   # 10 segments per chunk
    tm.sweep(SAE, {"seed": [0, 1, 2, 3]}, train, data=Counting(), chunk_size=2,
             devices=jax.devices()[:1], progress=False)
    assert Counting.drawn == 1 + 2 * 200     # the width check's peek, then each chunk's steps


def test_the_training_density_is_named_for_what_it_counts(base):
    """Firings counted while the parameters move are not the final weights' density (here,
    40 steps from initialisation, they differ by up to 0.2 for the same latent): the result says so
    in its name, where it was `latent_density`, which reads as the final weights'."""
    assert "latent_density" not in base
    density = base.training_latent_density
    assert density.dims == ("l1_coefficient", "seed", "latent")
    assert float(density.min()) >= 0 and float(density.max()) <= 1


def test_old_results_load_with_the_current_variable_name(base, tmp_path):
    base.rename(training_latent_density="latent_density").to_netcdf(tmp_path / "results.nc",
                                                                    engine="h5netcdf")
    old = tm.load_results(tmp_path)
    assert "latent_density" not in old
    np.testing.assert_array_equal(old.training_latent_density, base.training_latent_density)
