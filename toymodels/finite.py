"""Training on a fixed, finite dataset: T samples drawn once per seed, and a fixed test set.

Toy Models of Superposition trains on an endless stream; its sequel (Henighan et al. 2023,
"Superposition, Memorization, and Double Descent") trains the same models on T samples, full
batch, and measures the loss on fresh samples. `FiniteDataset` wraps a stream's `Source`: from the
stream's data key it draws the raw randoms of T training samples and of `test_size` test samples
once, and each step hands the model either all T (full batch: the paper's setting) or a minibatch
of a fresh permutation per epoch (every sample once per epoch, the epochs' orders independent).

As with streams, the draws depend only on the seed, so every model of a seed sees the same T
samples (gated by its own feature probabilities); a point's dataset never depends on the grid.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["FiniteDataset", "dataset_bytes"]


@dataclasses.dataclass(frozen=True)
class FiniteDataset:
    """A fixed training set of `size` samples and test set of `test_size`, per stream.

    `source` is the stream's own `Source`; its draws carry the sample axis last (as every toy
    source's do: (feature, batch), (draws, feature, batch)).
    """

    source: Any
    size: int
    test_size: int

    def keys(self, data_key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """(training set, test set, shuffling) keys of a stream. The stream's step keys are
        fold_in(data_key, t); these are split from it instead, so they never meet a step's."""
        train, test, shuffle = jax.random.split(data_key, 3)
        return train, test, shuffle

    def draws(self, data_key: jax.Array) -> tuple[Any, Any]:
        """The raw draws of the training set and of the test set: (…, size), (…, test_size)."""
        train, test, _ = self.keys(data_key)
        return self.source.draw(train, self.size), self.source.draw(test, self.test_size)

    def minibatch(self, train_draws: Any, data_key: jax.Array, t: jax.Array,
                  batch_size: int) -> Any:
        """The draws of step t's minibatch: all of them when batch_size == size, else samples
        t·B … t·B + B − 1 of the concatenated epochs, each epoch a fresh permutation."""
        if batch_size == self.size:
            return train_draws
        shuffle = self.keys(data_key)[2]
        position = t * batch_size + jnp.arange(batch_size)
        epoch, index = position // self.size, position % self.size
        first = epoch[0]  # a batch spans at most two epochs, since batch_size ≤ size

        def order(e):
            return jax.random.permutation(jax.random.fold_in(shuffle, e), self.size)

        picked = jnp.where(epoch == first, order(first)[index], order(first + 1)[index])
        return jax.tree.map(lambda a: jnp.take(a, picked, axis=-1), train_draws)

    def draw(self, key: jax.Array, batch_size: int) -> Any:
        """A stream's draws (the `Source` protocol): only `init` reads one, for its shapes."""
        return self.source.draw(key, batch_size)

    def batch(self, raw: Any, swept: Any) -> Any:
        return self.source.batch(raw, swept)


def dataset_bytes(n_values: int, size: int, test_size: int, batch_size: int, models: int = 1
                  ) -> int:
    """Bytes a finite-data block needs at least: one stream's training and test draws (n_values
    float32 per sample), and about a dozen (n_values, batch) float32 arrays per model (inputs,
    activations and their gradients), as `toymodels.runner` sizes blocks."""
    return 4 * n_values * (size + test_size + 12 * models * batch_size)
