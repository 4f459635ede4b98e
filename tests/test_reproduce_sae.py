"""Slow reproductions of the SAE results (`pytest -m slow`; minutes each on 2 CPU cores)."""

import numpy as np
import pytest

import toymodels as tm

pytestmark = pytest.mark.slow


def test_pentagon_sae_finds_all_five_directions_for_every_seed():
    # A trained 5 → 2 toy model at 1 − S = 0.02 (the pentagon); an SAE with d_sae = 10 at a
    # good L1 coefficient finds every feature direction, for every toy seed and SAE seed.
    toy = tm.sweep(tm.ToyModelConfig(n_features=5, d_hidden=2, feature_probability=0.02),
                   {"seed": [0, 1, 2, 3]}, tm.TrainConfig(steps=10_000), progress=False)
    assert (tm.analysis.n_represented(toy.W) == 5).all()
    ds = tm.sweep(tm.SAEConfig(d_in=2, d_sae=10), {"l1_coefficient": [0.316], "seed": [0, 1]},
                  tm.TrainConfig(steps=10_000), data=tm.ToyActivations(toy), progress=False)
    score = tm.analysis.mmcs(ds.W_dec, ds.dictionary)
    assert float(score.min()) >= 0.99, score.values


def test_ground_truth_recovery_needs_as_many_latents_as_features():
    # Sharkey et al.'s setup: 512 features in 256 dims, ~5 active. With the right coefficient an
    # SAE of at least 512 latents recovers the dictionary (MMCS ≥ 0.95); a narrower one cannot.
    truth = tm.GroundTruth(d_in=256, n_features=512, mean_active=5.0, frequency_decay=0.99,
                           seed=0)
    train = tm.TrainConfig(steps=20_000, batch_size=256, schedule="warmup_decay",
                           decay_steps=4000, log_every=1000)
    ds = tm.sweep(tm.SAEConfig(d_in=256, d_sae=512),
                  {"d_sae": [256, 512, 1024], "l1_coefficient": [0.06]}, train, data=truth,
                  progress=False)
    score = {w: float(tm.analysis.mmcs(part.W_dec, truth.dictionary).squeeze())
             for w, part in tm.split_widths(ds).items()}
    assert score[512] >= 0.95 and score[1024] >= 0.95, score
    assert score[256] < score[512] - 0.2, score
    np.testing.assert_array_equal(ds.diverged, False)
