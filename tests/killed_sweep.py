"""Run a sweep script in a subprocess and SIGKILL it once some of its chunks are written."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import toymodels as tm


def kill_after_chunks(source: str, folder: Path, n_chunks: int, timeout: float = 300
                      ) -> tuple[Path, dict[str, int]]:
    """Run the script `source` (its sweep writes to sys.argv[1]) in a subprocess and SIGKILL it
    once n_chunks chunks are written; (the sweep's out folder, {chunk file: mtime_ns}).

    The subprocess finds toymodels in this checkout when it is not installed.
    """
    out, script = folder / "run", folder / "run.py"
    script.write_text(source)
    root = str(Path(tm.__file__).parents[1])
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    proc = subprocess.Popen([sys.executable, str(script), str(out)],
                            env=os.environ | {"PYTHONPATH": path})
    try:
        deadline = time.time() + timeout
        while time.time() < deadline and len(list((out / "chunks").glob("*.npz"))) < n_chunks:
            assert proc.poll() is None, "the sweep finished before it could be killed"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        proc.kill()
    return out, {f.name: f.stat().st_mtime_ns for f in (out / "chunks").glob("*.npz")}
