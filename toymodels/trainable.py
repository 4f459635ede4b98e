"""What the sweep engine needs from the thing it trains: a small protocol, and the state it carries.

The engine (`toymodels.sweep`, running `toymodels.loop`) is generic over *what* is trained and
*where its data comes from*. A config type (`ToyModelConfig`, `SAEConfig`, …) names its trainer;
the trainer, built from the static fields only, gives pure functions of one model and one batch:

    init(swept, batch) -> TrainState            # one model, from its swept values (and a batch)
    step(state, swept, batch, t) -> (TrainState, {"loss": (), …})
    outputs(state) -> {name: array}             # the model's result variables

and says how its results are labeled (`result_dims`). `swept` is a pytree of arrays holding
everything that may differ between grid points, so one compilation serves every point; the
engine adds the model axis with `vmap` and the step loop with one `lax.scan`.

Data reaches `step` in one of two ways (`toymodels.loop`): drawn inside the compiled program by
the trainer's `source` from a stream that depends only on the model's seed (toy features, ground
truth, a toy model's activations), or handed in from the host, the same batch for every model
(an activation store). A `Source` draws the raw randoms of a stream once per step and turns them
into each model's batch, so models that share a seed share the draw.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from toymodels.config import TrainConfig

__all__ = ["HostData", "Source", "TrainState", "Trainer", "stream_keys"]


class TrainState(NamedTuple):
    """One model's training state (add leading axes for blocks of models)."""

    params: Any  # the trained parameters (an nnx.State)
    opt_state: Any
    aux: Any  # whatever else a trainer carries between steps (dead-latent counters …); () if none
    snapshots: Any  # params with a leading (snapshot,) axis; () when no snapshots are asked for


class Source(Protocol):
    """Data generated inside the compiled step, from a per-seed stream."""

    def draw(self, key: jax.Array, batch_size: int) -> Any:
        """The random draws of one step of one stream, shared by every model reading it."""

    def batch(self, raw: Any, swept: Any) -> Any:
        """One model's batch from its stream's draws and its own swept values."""


class HostData(Protocol):
    """Data handed in from the host: the same batches for every model of a sweep."""

    def segments(self, batch_size: int, steps: int) -> Iterator[Any]:
        """From the first step on, each segment's batches: pytrees of (steps, batch_size, ...)."""

    def bytes_per_batch(self, batch_size: int) -> int: ...

    def check_reiterable(self, n_passes: int) -> None:
        """Raise ValueError if the data cannot be read from the start `n_passes` times."""


class Trainer(Protocol):
    """The pure functions that train one model of a given static configuration."""

    train_config: TrainConfig
    #: where in-graph data comes from; None when the data is handed in from the host.
    source: Source | None
    #: where host data comes from; None when the data is drawn in-graph.
    host_data: HostData | None
    #: leading grid axes the data brings (one SAE per toy model of a toy sweep); usually ().
    data_axes: tuple

    def swept(self, config: Any, train: TrainConfig, data_index: int) -> Any:
        """One grid point's swept values (a pytree of arrays) from its configs and data index."""

    def describe_data(self) -> dict[str, Any] | None:
        """What the data is, JSON-able, stored with results and compared on resume; None: nothing."""

    def data_variables(self) -> dict[str, tuple[tuple[str, ...], Any]]:
        """Variables the data adds to the results, {name: (dims, values)} (a known dictionary)."""

    def init(self, swept: Any, batch: Any) -> TrainState: ...

    def step(self, state: TrainState, swept: Any, batch: Any, t: jax.Array
             ) -> tuple[TrainState, dict[str, jax.Array]]: ...

    def outputs(self, state: TrainState) -> dict[str, jax.Array]:
        """One model's result variables (parameters in their published form, statistics)."""

    def snapshot_outputs(self, params: Any, aux: Any) -> dict[str, jax.Array]:
        """The parameters of one snapshot, in the form `outputs` gives them."""

    def result_dims(self) -> Mapping[str, tuple[str, ...]]:
        """Dims of each per-model result variable (after the grid's dims)."""

    def point_bytes(self) -> int:
        """Bytes of one model's largest activation array in a step, to size blocks of models."""

    def check_results(self, results: Any) -> list[str]:
        """What a researcher should be warned of in a finished sweep's Dataset (SAEs that never
        became sparse …), one message each; [] when nothing. The sweep issues them as warnings."""


def stream_keys(seed: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(init key, data key) of a seed. The data stream at step t is fold_in(data key, t)."""
    init_key, data_key = jax.random.split(jax.random.key(seed.astype(jnp.uint32)))
    return init_key, data_key
