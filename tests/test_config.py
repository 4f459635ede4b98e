"""Bad input fails fast: a ValueError naming the field and its allowed range, before compiling."""

import jax
import pytest

import toymodels as tm

MODEL = tm.ToyModelConfig(n_features=4, d_hidden=2)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"n_features": 0}, "n_features"),
        ({"d_hidden": 0}, "d_hidden"),
        ({"d_hidden": 1.5}, "d_hidden"),
        ({"kind": "relu"}, "kind"),
        ({"feature_probability": 0.0}, "feature_probability"),
        ({"feature_probability": 1.5}, "feature_probability"),
        ({"feature_probability": float("nan")}, "feature_probability"),
        ({"feature_probability": [0.1, 0.2]}, "feature_probability"),
        ({"importance_decay": -1.0}, "importance_decay"),
        ({"importance": [1.0, 1.0, float("inf"), 1.0]}, "importance"),
        ({"init_std": -0.1}, "init_std"),
        ({"n_correlated_pairs": 3}, "n_correlated_pairs"),
        ({"n_anticorrelated_pairs": 1, "feature_probability": 0.6}, "feature_probability"),
    ],
)
def test_model_config_errors_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        tm.ToyModelConfig(**{"n_features": 4, "d_hidden": 2, **kwargs})


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"steps": 0}, "steps"),
        ({"lr": 0.0}, "lr"),
        ({"lr": float("inf")}, "lr"),
        ({"optimizer": "lion"}, "optimizer"),
        ({"log_every": 7}, "log_every"),
        ({"snapshot_steps": (150,)}, "snapshot_steps"),
        ({"seed": -1}, "seed"),
        ({"schedule": "cosine"}, "schedule"),
        ({"warmup_steps": 20_000}, "warmup_steps"),
    ],
)
def test_train_config_errors_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        tm.TrainConfig(**{"steps": 1000, "log_every": 100, **kwargs})


@pytest.mark.parametrize(
    "grid, field",
    [
        ({"feature_probability": [1.0, 0.0]}, "feature_probability"),
        ({"feature_probability": [1.0, float("nan")]}, "feature_probability"),
        ({"lr": [1e-3, -1.0]}, "lr"),
        ({"seed": [0, 1.5]}, "seed"),
        ({"importance": [[1.0, 1.0]]}, "importance"),
        ({"d_hidden": [2, 0]}, "d_hidden"),
        ({"d_hidden": [2, 1.5]}, "d_hidden"),
        ({"sparsity": [0.1]}, "sparsity"),
        ({"seed": []}, "seed"),
        ({"lr": 1e-3}, "lr"),
    ],
)
def test_bad_grid_fails_before_compiling(grid, field, monkeypatch):
    def no_compile(*args, **kwargs):
        raise AssertionError("compiled before validating")

    monkeypatch.setattr(jax, "jit", no_compile)
    with pytest.raises(ValueError, match=field):
        tm.sweep(MODEL, grid, tm.TrainConfig(steps=10, log_every=10))


def test_error_message_gives_allowed_range():
    with pytest.raises(ValueError, match=r"\(0.0, 1.0\]"):
        tm.ToyModelConfig(feature_probability=2.0)


def test_grid_names_allowed_fields():
    with pytest.raises(ValueError, match="static") as err:
        tm.sweep(MODEL, {"n_features": [3]}, tm.TrainConfig(steps=10, log_every=10))
    assert "feature_probability" in str(err.value)


@pytest.mark.parametrize("steps, log_every", [(10, 10), (1, 1), (150, 75), (7, 7), (10_000, 100),
                                              (300, 100)])
def test_log_every_follows_steps_when_not_given(steps, log_every):
    """A default never makes a valid request fail: TrainConfig(steps=10) used to ask for 100."""
    train = tm.TrainConfig(steps=steps)
    assert train.log_every == log_every
    assert steps % train.log_every == 0 and len(train.log_steps) == steps // log_every


def test_an_explicit_log_every_is_still_checked():
    assert tm.TrainConfig(steps=10, log_every=5).log_every == 5
    with pytest.raises(ValueError, match=r"log_every must be an integer in \[1, 10\]"):
        tm.TrainConfig(steps=10, log_every=100)
