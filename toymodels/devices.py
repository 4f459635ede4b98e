"""How many devices JAX sees on a CPU host.

XLA runs a small model's ops on about one core per device, so on a CPU toymodels asks JAX for one
host device per core and shards each chunk of models across them. This must happen before JAX
creates its CPU backend, which is why `import toymodels` calls `use_host_devices()` first thing.

Override with the environment variable `TOYMODELS_CPU_DEVICES=N` (1 turns it off), or set
`XLA_FLAGS=--xla_force_host_platform_device_count=N` yourself; either wins over the default.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

ENV = "TOYMODELS_CPU_DEVICES"


def host_device_count() -> int:
    """The number of CPU devices toymodels asks for: $TOYMODELS_CPU_DEVICES or the usable cores."""
    value = os.environ.get(ENV)
    if value is not None:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"{ENV} must be a positive integer; got {value!r}")
        return int(value)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def use_host_devices() -> None:
    """Ask JAX for `host_device_count()` CPU devices, unless XLA_FLAGS already says how many."""
    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return
    import jax

    try:
        jax.config.update("jax_num_cpu_devices", host_device_count())
    except RuntimeError:
        log.warning("JAX's CPU backend was already initialised before `import toymodels`: "
                    "it keeps %d CPU device(s). Import toymodels first to shard over cores.",
                    jax.local_device_count("cpu") if jax.default_backend() == "cpu" else 1)


def memory_bytes(device) -> int:
    """The memory one device may use: an accelerator's limit, or a CPU host's physical memory."""
    try:
        return int(device.memory_stats()["bytes_limit"])
    except Exception:  # memory_stats is optional in the PJRT API, and absent on CPUs
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
