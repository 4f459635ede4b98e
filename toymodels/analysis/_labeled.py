"""Let an analysis function written for arrays take `xarray.DataArray`s too.

Every metric is written once, over arrays whose trailing axes are its *core* axes (feature,
hidden, …) and whose leading axes are batch or grid axes it maps over. `labeled` wraps such a
function so that a sweep result can be passed straight in: a DataArray argument's core dims are
moved last, its other dims are broadcast by name against the other DataArray arguments, and the
result comes back as a DataArray with those leading dims and their coordinates kept. Without a
DataArray argument the function is called as it is, so it still works under `jit` and `vmap`.

Core dims are looked up by name. A DataArray that does not have all of them (an SAE decoder with
dims ("latent", "d_model"), say) has its trailing dims taken as the core dims instead, and the
output dims that came from them get their original names back.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence

import numpy as np
import xarray as xr


def labeled(
    *core_dims: Sequence[str], out: Sequence[str], name: str | None = None
) -> Callable[[Callable], Callable]:
    """Decorate `fn(*arrays, **options)` so that its array arguments may be DataArrays.

    Args:
      *core_dims: for each of `fn`'s leading array parameters, in order, the names of its core
        dims (the trailing axes `fn` works on). An array parameter given None is left out.
      out: the names of the core dims of `fn`'s output (its trailing axes); `()` for a value per
        grid point.
      name: the name of the output DataArray; `fn`'s own name by default.

    Returns:
      A decorator. The wrapped function returns a DataArray named after `fn`, with dims
      `(*leading dims of the inputs, *out)`, when any array argument is a DataArray, and `fn`'s
      own (JAX) result otherwise.
    """
    out = tuple(out)

    def decorate(fn: Callable) -> Callable:
        signature = inspect.signature(fn)
        array_params = list(signature.parameters)[: len(core_dims)]

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            # Defaults filled in and every argument passed the same way, so that a jitted `fn`
            # sees one signature (and compiles once) however it is called.
            bound.apply_defaults()
            arguments = bound.arguments
            if not any(isinstance(arguments[p], xr.DataArray) for p in array_params):
                return fn(*bound.args, **bound.kwargs)
            names, inputs, input_core_dims, original = [], [], [], {}
            for param, dims in zip(array_params, core_dims):
                x = arguments[param]
                if x is None:
                    continue
                dims = tuple(dims)
                if isinstance(x, xr.DataArray) and not set(dims) <= set(x.dims):
                    if x.ndim < len(dims):
                        raise ValueError(
                            f"{fn.__name__}: {param} needs at least {len(dims)} dims "
                            f"{dims}, got {x.dims}"
                        )
                    trailing = x.dims[x.ndim - len(dims) :]
                    x = x.rename({old: new for old, new in zip(trailing, dims) if old != new})
                    original.update(zip(dims, trailing))
                names.append(param)
                inputs.append(x)
                input_core_dims.append(list(dims))

            def call(*data):
                arguments.update(zip(names, data))
                return np.asarray(fn(*bound.args, **bound.kwargs))

            result = xr.apply_ufunc(
                call, *inputs, input_core_dims=input_core_dims, output_core_dims=[list(out)]
            )
            back = {d: original[d] for d in out if original.get(d, d) != d}
            return result.rename(back).rename(name or fn.__name__)

        return wrapper

    return decorate
