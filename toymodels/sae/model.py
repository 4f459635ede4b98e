"""`tm.SAE`: one trained sparse dictionary, ready to encode and decode activations.

An SAE is data: its `SAEConfig` and its parameters in SAELens's published form (`W_enc`,
`b_enc`, `W_dec`, `b_dec`, and `threshold`, `b_gate`, `r_mag`, `b_mag` where the architecture
has them), with any activation normalisation already folded in. It comes from a sweep
(`SAE.from_results`), from a SAELens folder (`tm.saelens.load`), or is built directly. Encoding
maps the one-example functions of `toymodels.sae.architectures` over any leading axes.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from toymodels.config import _fail
from toymodels.sae import architectures as arch
from toymodels.sae.config import SAEConfig, stored_config

__all__ = ["SAE"]


@functools.partial(jax.jit, static_argnames=("architecture", "k", "apply_b_dec_to_input"))
def _encode(params, x, architecture: str, k: int | None, apply_b_dec_to_input: bool):
    one = functools.partial(arch.encode, architecture=architecture, k=k,
                            apply_b_dec_to_input=apply_b_dec_to_input)
    flat = x.reshape(-1, x.shape[-1])
    return jax.vmap(one, in_axes=(None, 0))(params, flat).reshape(x.shape[:-1] + (-1,))


@jax.jit
def _decode(params, f):
    return f @ params["W_dec"] + params["b_dec"]


@dataclasses.dataclass(frozen=True, eq=False)
class SAE:
    """A trained SAE (or transcoder): its config, published parameters and metadata.

    Attributes:
      config: the architecture and shapes (training fields keep their defaults when loaded).
      params: {name: (…) float32 array} in SAELens's names and shapes: W_enc (d_in, d_sae),
        W_dec (d_sae, d_out) …
      metadata: what the SAE was trained on, as SAELens records it (hook_name, model_name …).
    """

    config: SAEConfig
    params: dict[str, np.ndarray]
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        names = arch.param_names(self.config.architecture)
        got = set(self.params)
        if got != set(names):
            _fail("params", f"exactly {list(names)} for architecture "
                  f"{self.config.architecture!r}", sorted(got))
        dims = arch.param_dims(self.config)
        sizes = {"d_in": self.config.d_in, "latent": self.config.d_sae,
                 "d_out": self.config.output_width}
        params = {}
        for name in names:
            want = tuple(sizes[d] for d in dims[name])
            value = np.asarray(self.params[name], np.float32)
            if value.shape != want:
                _fail(f"params[{name!r}]", f"of shape {want} ({', '.join(dims[name])})",
                      value.shape)
            params[name] = value
        object.__setattr__(self, "params", params)

    @property
    def architecture(self) -> str:
        return self.config.architecture

    @property
    def d_in(self) -> int:
        return self.config.d_in

    @property
    def d_sae(self) -> int:
        return self.config.d_sae

    def __getattr__(self, name: str) -> np.ndarray:
        # W_enc, W_dec, b_enc, b_dec, threshold … as attributes.
        params = self.__dict__.get("params", {})
        if name in params:
            return params[name]
        raise AttributeError(name)

    def encode(self, x) -> jax.Array:
        """feature_acts: (..., d_in) -> (..., d_sae), as SAELens's `encode`."""
        x = jnp.asarray(_values(x), jnp.float32)
        if x.shape[-1:] != (self.d_in,):
            _fail("x", f"an array of shape (..., d_in={self.d_in})", x.shape)
        c = self.config
        return _encode(self.params, x, c.architecture, c.k, c.subtracts_b_dec)

    def decode(self, feature_acts) -> jax.Array:
        """The reconstruction f W_dec + b_dec: (..., d_sae) -> (..., d_out)."""
        f = jnp.asarray(_values(feature_acts), jnp.float32)
        if f.shape[-1:] != (self.d_sae,):
            _fail("feature_acts", f"an array of shape (..., d_sae={self.d_sae})", f.shape)
        return _decode(self.params, f)

    def __call__(self, x) -> jax.Array:
        """decode(encode(x))."""
        return self.decode(self.encode(x))

    @classmethod
    def from_results(cls, results: xr.Dataset, metadata: dict[str, Any] | None = None) -> "SAE":
        """The SAE of one point of an SAE sweep: `SAE.from_results(ds.isel(l1_coefficient=0))`.

        Every grid dim must have been selected away. In a sweep over widths, the latents beyond
        this point's d_sae (padding, see `toymodels.widths`) are dropped.
        """
        if not isinstance(results, xr.Dataset) or "sae" not in results.attrs:
            _fail("results", "an SAE sweep's Dataset", type(results).__name__)
        left = [d for d in results["loss"].dims]
        if left:
            _fail("results", "one SAE: select every grid dim first (e.g. ds.isel(seed=0))",
                  f"a Dataset with grid dims {left}")
        fields = json.loads(results.attrs["sae"])
        for name in ("d_sae", "k"):  # static values a width sweep put on the grid
            if name in results.coords and results[name].ndim == 0:
                fields[name] = results[name].item()
        config = stored_config(fields)
        params = {}
        for name in arch.param_names(config.architecture):
            value = results[name]
            if "latent" in value.dims:
                value = value.isel(latent=slice(0, config.d_sae))
            params[name] = value.values
        return cls(config, params, dict(metadata or {}))


def _values(x):
    return x.values if isinstance(x, xr.DataArray) else x
