"""Vmapped sweep == Python loop over points, for each architecture (`sae_reference.ENGINE_CASES`).

The sharded, vmapped sweep of a small grid equals training each grid point alone with the
trainer's own `init` / `step` / `outputs` in a Python loop, one compilation of the step serving
every point and step; outputs are finite and labeled with their documented dims.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toymodels import trainers
import toymodels as tm
from sae_reference import CASES, ENGINE_CASES, MAIN_COEFFICIENT, ground_truth, with_coefficients
from toymodels.trainable import stream_keys

TRAIN = tm.TrainConfig(steps=6, batch_size=16, log_every=3, lr=3e-3)


@pytest.mark.parametrize("case", ENGINE_CASES)
def test_sweep_equals_python_loop_over_points(case):
    cfg = with_coefficients(CASES[case], dead_feature_window=2)
    data = ground_truth(cfg)
    coefficient = MAIN_COEFFICIENT[cfg.architecture]
    grid = {coefficient: [0.05, 0.5], "seed": [0, 3]}
    ds = tm.sweep(cfg, grid, TRAIN, data=data, progress=False)

    trainer = trainers.make_trainer(cfg, TRAIN, data)
    step = jax.jit(trainer.step)  # init and outputs run eagerly: cheaper than compiling them
    source, n_logs = trainer.source, TRAIN.steps // TRAIN.log_every
    for value in grid[coefficient]:
        for seed in grid["seed"]:
            swept = trainer.swept(with_coefficients(cfg, **{coefficient: value}),
                                  dataclasses.replace(TRAIN, seed=seed), 0)
            data_key = stream_keys(jnp.int32(seed))[1]

            def batch(t):  # the point's own data stream at step t (its seed's, drawn in-graph)
                return source.batch(source.draw(jax.random.fold_in(data_key, t),
                                                TRAIN.batch_size), swept)

            state = trainer.init(swept, batch(TRAIN.steps))  # init sees a batch no step trains on
            losses = []
            for t in range(TRAIN.steps):
                state, metrics = step(state, swept, batch(t), jnp.int32(t))
                losses.append(float(metrics["loss"]))
            point = ds.sel({coefficient: value, "seed": seed})
            for name, array in trainer.outputs(state).items():
                np.testing.assert_allclose(point[name], array, rtol=1e-4, atol=1e-5,
                                           err_msg=name)
            np.testing.assert_allclose(point.loss_history,
                                       np.mean(np.reshape(losses, (n_logs, -1)), axis=1),
                                       rtol=1e-4, atol=1e-6)
    assert step._cache_size() == 1  # one compilation for every point and step

    assert not ds.diverged.any()
    dims = tuple(grid)
    sizes = {"d_in": cfg.d_in, "d_out": cfg.output_width, "latent": cfg.d_sae}
    for name, var_dims in trainer.result_dims().items():
        assert ds[name].dims == dims + var_dims, name
        assert ds[name].shape == (2, 2) + tuple(sizes[d] for d in var_dims), name
        assert np.isfinite(ds[name]).all(), name
    assert set(tm.sae.param_names(cfg.architecture)) <= set(ds.data_vars)
