"""A sweep's results on disk: one file per finished chunk, written atomically, and the final Dataset.

Layout of `out/`:
  sweep.json          what was swept (model, train, grid), compared on resume;
  chunks/NNNNNN.npz   the results of one finished chunk, keyed by flat point index;
  results.nc          the assembled Dataset (netCDF4, with the configs in its attributes).

Every file is written to a temporary name in the same folder, flushed, and renamed over the
target, so a run killed at any moment leaves only whole files: at most the chunk in flight is lost.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr


def atomic_write(path: Path, write) -> None:
    """Call `write(file)` on a temporary file beside `path`, fsync it and rename it over `path`,
    then fsync the folder so the rename itself is durable: a crash leaves the old file or the
    new one, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class SweepStore:
    """The folder of one sweep. Creating it checks that `out` holds this sweep or nothing.

    With several processes (multi-host), every process reads the folder to resume, and only the
    one made with `writer=True` writes to it: `out` must be on a filesystem every host sees.
    """

    def __init__(self, path: str | os.PathLike, description: dict[str, Any], writer: bool = True):
        self.path, self.writer = Path(path), writer
        self.chunks = self.path / "chunks"
        spec = self.path / "sweep.json"
        if not writer:
            return
        self.chunks.mkdir(parents=True, exist_ok=True)
        text = json.dumps(description, indent=1, sort_keys=True)
        if spec.exists():
            stored = json.loads(spec.read_text())
            if stored != json.loads(text):
                differ = sorted(k for k in description if stored.get(k) != description[k])
                raise ValueError(
                    f"out={str(self.path)!r} holds a different sweep ({', '.join(differ)} differ); "
                    "use a new folder, or the same configs and grid to resume"
                )
        else:
            atomic_write(spec, lambda f: f.write(text.encode()))

    def save_chunk(self, index: int, points: np.ndarray, arrays: dict[str, np.ndarray]) -> None:
        """Keep a finished chunk: `arrays[name]` holds one row per entry of `points`."""
        if not self.writer:
            return

        def write(f):
            np.savez(f, __points__=points, **arrays)
        atomic_write(self.chunks / f"{index:06d}.npz", write)

    def load_chunks(self) -> list[tuple[np.ndarray, dict[str, np.ndarray]]]:
        """Every finished chunk as (points, arrays)."""
        out = []
        for file in sorted(self.chunks.glob("*.npz")):
            with np.load(file) as z:
                arrays = {k: z[k] for k in z.files if k != "__points__"}
                out.append((z["__points__"], arrays))
        return out

    def save_results(self, ds: xr.Dataset) -> Path:
        target = self.path / "results.nc"
        if not self.writer:
            return target
        atomic_write(target, lambda f: f.write(ds.to_netcdf(engine="h5netcdf")))
        return target


#: {earlier name: current name} of result variables, renamed when old results are loaded.
RENAMED_VARIABLES = {"latent_density": "training_latent_density"}


def load_results(path: str | os.PathLike) -> xr.Dataset:
    """The Dataset of a finished sweep, from its `out` folder or its results.nc file."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.nc"
    if not path.exists():
        raise ValueError(f"no sweep results at {str(path)!r}")
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        ds = ds.load()
    # Results written before the variable was named for what it counts (see SAETrainer.outputs).
    renamed = {old: new for old, new in RENAMED_VARIABLES.items() if old in ds and new not in ds}
    return ds.rename(renamed) if renamed else ds

