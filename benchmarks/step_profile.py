"""XLA's per-kernel times of one SAE training step: where `sae_speed.py`'s (b) and (c) spend it.

Runs the case's sweep once to compile, then again under `jax.profiler`, sums each kernel's time
over the run from the trace (one event per fusion, dot, copy or custom call that the CPU
runtime executes), and prints the largest per step with the shape it writes and the JAX
operation it comes from, read from XLA's optimized HLO (dumped by the same run). Times are
summed over devices, so with two devices a step's kernels add up to about twice its wall time.

    python benchmarks/step_profile.py b              # 16 standard SAEs, d_in 256, d_sae 1024
    python benchmarks/step_profile.py c --decoding sparse   # 2 TopK SAEs, d_sae 16,384
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import os
import re
import sys
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("case", choices=["b", "c"])
    parser.add_argument("--decoding", choices=["dense", "sparse"], default="sparse")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="step_profile_"))
    # before JAX starts: dump the optimized HLO, to name what each kernel computes
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + f" --xla_dump_to={work / 'hlo'} --xla_dump_hlo_as_text")
    import toymodels as tm
    import jax
    import numpy as np

    if args.case == "b":
        truth = tm.GroundTruth(d_in=256, n_features=512, mean_active=5.0, seed=0)
        sae = tm.SAEConfig(d_in=256, d_sae=1024)
        grid = {"l1_coefficient": [1e-3, 3e-3, 1e-2, 3e-2], "seed": [0, 1, 2, 3]}
    else:
        truth = tm.GroundTruth(d_in=512, n_features=2048, mean_active=16.0, seed=0)
        sae = tm.SAEConfig(d_in=512, d_sae=16384, architecture="topk", k=32,
                           decoding=args.decoding)
        grid = {"seed": [0, 1]}
    train = tm.TrainConfig(steps=args.steps, batch_size=1024, lr=1e-3, log_every=args.steps)

    def run():
        ds = tm.sweep(sae, grid, train, data=truth, progress=False)
        np.asarray(ds.W_dec.values)

    run()  # compile
    jax.profiler.start_trace(str(work / "trace"), create_perfetto_trace=True)
    run()
    jax.profiler.stop_trace()

    trace = sorted((work / "trace").rglob("*.trace.json.gz"))[-1]
    events = json.load(gzip.open(trace))
    events = events["traceEvents"] if isinstance(events, dict) else events
    hlo = max((work / "hlo").glob("*jit_run*cpu_after_optimizations.txt"),
              key=lambda p: p.stat().st_size).read_text()
    kernels = set(re.findall(r"^\s+(?:ROOT )?%?([\w.-]+) = ", hlo, re.M))
    total: collections.Counter = collections.Counter()
    for e in events:
        if e.get("ph") == "X" and e["name"] in kernels:
            total[e["name"]] += e.get("dur", 0.0)
    wall = sum(e.get("dur", 0.0) for e in events
               if e.get("ph") == "X" and e["name"] == "ExecuteReplicated.__call__")
    print(f"case ({args.case}) {sae.architecture} d_in={sae.d_in} d_sae={sae.d_sae}"
          f"{' ' + args.decoding if args.case == 'c' else ''}, {args.steps} steps on "
          f"{jax.device_count()} device(s): {wall / 1e3 / args.steps:.1f} ms wall per step, "
          f"{sum(total.values()) / 1e3 / args.steps:.1f} ms of kernels (summed over devices)")
    for name, us in total.most_common(args.top):
        line = re.search(rf"^\s+(?:ROOT )?%?{re.escape(name)} = (\S+) .*$", hlo, re.M)
        shape = line.group(1) if line else "?"
        op = re.search(r'op_name="([^"]*)"', line.group(0)) if line else None
        where = re.sub(r"^jit\(run\)/(shard_map/)?(while/body/closed_call/)*", "",
                       op.group(1)) if op else ""
        print(f"{us / 1e3 / args.steps:8.1f} ms  {name:28s} {shape:28s} {where[:60]}")


if __name__ == "__main__":
    sys.exit(main())
