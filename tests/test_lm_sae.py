"""SAEs and transcoders trained on a harvested MiniLM store through `tm.sweep(..., data=store)`."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import toymodels as tm  # noqa: E402
from toymodels import lm  # noqa: E402

SITES = ["blocks.1.mlp.hook_in", "blocks.1.hook_mlp_out", "blocks.1.hook_resid_post"]
TRAIN = tm.TrainConfig(steps=60, batch_size=64, lr=1e-3, log_every=20)


@pytest.fixture(scope="module")
def store(tmp_path_factory, one_torch_thread):
    return lm.harvest("all-MiniLM-L6-v2", sites=SITES, texts=lm.corpus()[:48],
                      out=tmp_path_factory.mktemp("acts") / "minilm", batch_size=16,
                      progress=False)


def test_sae_sweep_on_a_store(store, tmp_path):
    resid = store.select(site="blocks.1.hook_resid_post")
    sae = tm.SAEConfig(d_in=resid.d_in, d_sae=8 * resid.d_in)
    out = tmp_path / "sweep"
    ds = tm.sweep(sae, grid={"l1_coefficient": [1.0, 3.0]}, train=TRAIN, data=resid, out=str(out),
                  progress=False)
    assert ds.W_dec.dims == ("l1_coefficient", "latent", "d_in")
    assert ds.W_dec.shape == (2, 8 * 384, 384)
    assert not ds.diverged.any()
    assert (ds.mse_history[:, -1] < ds.mse_history[:, 0]).all()
    assert (ds.l0.sel(l1_coefficient=3.0) < ds.l0.sel(l1_coefficient=1.0)).all()
    data = json.loads(ds.attrs["data"])
    assert data["kind"] == "host" and data["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert data["site"] == ["blocks.1.hook_resid_post"] and data["tokens"] == len(store)

    # One trained SAE reconstructs the store's rows better than their mean does, and knows
    # which model and site it reads.
    one = lm.sae_from_sweep(out, {"l1_coefficient": 1.0})
    x = next(resid.chunks(512))
    x_hat = lm.decode_rows(one, lm.encode_rows(one, x))
    np.testing.assert_allclose(x_hat, tm.SAE.from_results(ds.isel(l1_coefficient=0))(x),
                               rtol=1e-5, atol=1e-5)
    assert np.sum((x_hat - x) ** 2) < np.sum((x - x.mean(0)) ** 2)
    assert one.metadata["hook_name"] == "blocks.1.hook_resid_post"
    assert one.metadata["model_name"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert lm.sae_site(one) == ("blocks.1.hook_resid_post", None)
    with pytest.raises(ValueError, match="choose a value of 'l1_coefficient'"):
        lm.sae_from_sweep(ds)
    with pytest.raises(ValueError, match="not on the grid"):
        lm.sae_from_sweep(ds, {"l1_coefficient": 2.0})
    with pytest.raises(ValueError, match="not grid dims"):
        lm.sae_from_sweep(ds, {"l1_coefficient": 1.0, "seed": 0})

    # Resuming on the same store (reopened) loads the finished sweep; another store is refused.
    again = tm.sweep(sae, grid={"l1_coefficient": [1.0, 3.0]}, train=TRAIN,
                     data=lm.ActivationStore(store.path, site="blocks.1.hook_resid_post"),
                     out=str(out), progress=False)
    np.testing.assert_array_equal(again.W_dec, ds.W_dec)
    other = store.select(site="blocks.1.hook_mlp_out")
    with pytest.raises(ValueError, match="different sweep.*data"):
        tm.sweep(sae, grid={"l1_coefficient": [1.0, 3.0]}, train=TRAIN, data=other, out=str(out),
                 progress=False)


def test_transcoder_on_a_store(store):
    pairs = store.select(site="blocks.1.mlp.hook_in", target_site="blocks.1.hook_mlp_out")
    cfg = tm.SAEConfig(d_in=pairs.d_in, d_sae=2 * pairs.d_in, d_out=pairs.d_out,
                       architecture="topk", k=16)
    ds = tm.sweep(cfg, grid={"seed": [0]}, train=TRAIN, data=pairs, progress=False)
    assert ds.W_dec.dims == ("seed", "latent", "d_out")
    assert not ds.diverged.any()
    assert float(ds.mse_history[0, -1]) < float(ds.mse_history[0, 0])
    assert json.loads(ds.attrs["data"])["target_site"] == "blocks.1.hook_mlp_out"
    transcoder = lm.sae_from_sweep(ds)
    assert lm.sae_site(transcoder) == ("blocks.1.mlp.hook_in", "blocks.1.hook_mlp_out")


def test_store_width_must_match(store):
    with pytest.raises(ValueError, match="d_in"):
        tm.sweep(tm.SAEConfig(d_in=100, d_sae=200), {}, TRAIN,
                 data=store.select(site="blocks.1.hook_resid_post"))
    with pytest.raises(ValueError, match="several sites"):
        tm.sweep(tm.SAEConfig(d_in=384, d_sae=200), {}, TRAIN, data=store)
