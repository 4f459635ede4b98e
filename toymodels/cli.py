"""The `toymodels` command.

    toymodels sweep experiments/tms_intro.toml --out results/tms_intro
    toymodels figures results/ --to figures/
    toymodels demo                      # a few real sweeps and their figures, in minutes on a CPU,
                                        # written to results/demo/ (figures in results/demo/figures/)
    toymodels reproduce                 # the experiments/*.toml, then their figures (~15 min);
                                        # --full adds the slowest (REPRODUCE_FULL_ONLY)
    toymodels lm harvest --model all-MiniLM-L6-v2 --site blocks.3.hook_resid_post --out acts/
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from pathlib import Path

import xarray as xr

log = logging.getLogger("toymodels")

#: The demo: the TMS intro and basic-results sweeps, the pentagon forming, a coarse n=2, m=1
#: phase diagram, and SAEs taking the pentagon's features back out; a few minutes on 2 CPU cores.
DEMO = ("tms_intro", "tms_basic_relu_output", "tms_basic_linear", "tms_dynamics", "tms_phase_2_1",
        "sae_pentagon")
DEMO_OVERRIDES = {
    "tms_phase_2_1": {"grid": {"seed": [0, 1]}, "steps": 5_000},
    "sae_pentagon": {"grid": {"l1_coefficient": [0.1, 0.3, 1.0], "seed": [0]}, "steps": 5_000},
}


#: The experiments only `toymodels reproduce --full` runs, so that the default `reproduce` finishes
#: within 15 minutes on 2 CPU cores; their committed figures stay as they are until `--full`
#: redraws them. Measured on that machine (December 2026): the 3 -> 2 basin map (12,800 models)
#: 643 s, the SAE recovery sweep 563 s, memorization at six widths 113 s; all 23 experiments and
#: their figures 34.4 min, the rest 12.4 min (9.0 min once SAE training went feature-major, 8.1 min
#: at a6321cc).
REPRODUCE_FULL_ONLY = ("tms_phase_3_2_basins", "sae_recovery", "memorization_width")


def _experiments_dir(path: str | None) -> Path:
    if path is not None:
        return Path(path)
    here = Path(__file__).resolve().parent.parent / "experiments"
    return here if here.is_dir() else Path("experiments")


def run_experiment(exp, out: Path, progress: bool | None = None, chunk_size: int | None = None):
    """Run one experiment into `out` (resumable); an SAE sweep on toy activations first trains
    its toy models into `out/toy`."""
    from toymodels.experiment import ToySweep
    from toymodels.sources import ToyActivations
    from toymodels.sweep import sweep

    start = time.perf_counter()
    data = exp.data
    if isinstance(data, ToySweep):
        toy = sweep(data.model, data.grid, data.train, out=str(out / "toy"), progress=progress)
        data = ToyActivations(toy)
    ds = sweep(exp.model, exp.grid, exp.train, data=data, out=str(out), progress=progress,
               chunk_size=chunk_size)
    log.info("%s: %d models in %.1f s -> %s", exp.name, ds.loss.size, time.perf_counter() - start, out)
    return ds


def write_figures(datasets: dict[str, xr.Dataset], to: Path) -> list[Path]:
    """`plots.write_figures`, imported only when figures are drawn (matplotlib is slow to load)."""
    from toymodels import plots

    return plots.write_figures(datasets, to)


def load_all(results: Path) -> dict[str, xr.Dataset]:
    """Every finished sweep under `results` (itself, or its sub-folders), by folder name."""
    from toymodels.store import load_results

    folders = [results] if (results / "results.nc").exists() else sorted(
        p.parent for p in results.glob("*/results.nc"))
    if not folders:
        raise SystemExit(f"no results.nc in {results} or its sub-folders")
    return {f.name: load_results(f) for f in folders}


def _cmd_sweep(args) -> None:
    from toymodels.experiment import Experiment

    exp = Experiment.from_toml(args.config)
    out = Path(args.out) if args.out else Path("results") / exp.name
    run_experiment(exp, out, progress=None if not args.quiet else False, chunk_size=args.chunk_size)
    print(out / "results.nc")


def _cmd_figures(args) -> None:
    for p in write_figures(load_all(Path(args.results)), Path(args.to)):
        print(p)


def _scaled(exp, overrides: dict):
    grid = {**exp.grid, **overrides.get("grid", {})}
    train = exp.train
    if "steps" in overrides:
        train = dataclasses.replace(train, steps=overrides["steps"])
    return dataclasses.replace(exp, grid=grid, train=train)


def _run_many(names, args, overrides=None, seconds=None) -> dict[str, xr.Dataset]:
    from toymodels.experiment import Experiment

    folder = _experiments_dir(args.experiments)
    results = Path(args.results)
    datasets = {}
    for name in names:
        exp = Experiment.from_toml(folder / f"{name}.toml")
        if overrides and name in overrides:
            exp = _scaled(exp, overrides[name])
        start = time.perf_counter()
        datasets[name] = run_experiment(exp, results / name, progress=None if not args.quiet else False)
        if seconds is not None:
            seconds[name] = time.perf_counter() - start
    return datasets


def demo_figures_dir(args) -> Path:
    """Where `toymodels demo` writes its figures: --to, else RESULTS/figures.

    Never the repository's figures/ by default: those are the full-size runs the README shows,
    and the demo's quick versions would overwrite them.
    """
    return Path(args.to) if args.to is not None else Path(args.results) / "figures"


def _cmd_demo(args) -> None:
    start = time.perf_counter()
    datasets = _run_many(DEMO, args, DEMO_OVERRIDES)
    to = demo_figures_dir(args)
    for p in write_figures(datasets, to):
        print(p)
    print(f"demo finished in {time.perf_counter() - start:.0f} s; its figures are in {to}/")


def reproduce_names(folder: Path, only: list[str] | None, full: bool) -> list[str]:
    """The experiments `reproduce` runs: `only` if given, else every TOML in `folder` but the
    ones in REPRODUCE_FULL_ONLY unless `full`."""
    if only:
        return list(only)
    names = sorted(p.stem for p in folder.glob("*.toml"))
    return names if full else [n for n in names if n not in REPRODUCE_FULL_ONLY]


def _cmd_reproduce(args) -> None:
    start = time.perf_counter()
    folder = _experiments_dir(args.experiments)
    names = reproduce_names(folder, args.only, args.full)
    seconds: dict[str, float] = {}
    datasets = _run_many(names, args, seconds=seconds)
    drawing = time.perf_counter()
    for p in write_figures(datasets, Path(args.to)):
        print(p)
    seconds["figures"] = time.perf_counter() - drawing
    total = time.perf_counter() - start
    width = max(map(len, seconds))
    print("reproduce: seconds per experiment (a resumed one counts only what was left)")
    for name, s in seconds.items():
        print(f"  {name:<{width}}  {s:8.1f}")
    print(f"  {'total':<{width}}  {total:8.1f}  ({total / 60:.1f} min)")
    left = [n for n in sorted(p.stem for p in folder.glob("*.toml")) if n not in names]
    if left and not args.only:
        print("not run (reproduce --full runs them): " + ", ".join(left))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="toymodels", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sweep", help="run the sweep a TOML file describes")
    p.add_argument("config", help="a TOML file with [model], [train] and [grid] tables")
    p.add_argument("--out", help="results folder (default results/NAME); re-run to resume")
    p.add_argument("--chunk-size", type=int, default=None, help="models per compiled call")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_sweep)

    p = sub.add_parser("figures", help="draw every figure the results in a folder allow")
    p.add_argument("results", help="a sweep's folder, or a folder of sweep folders")
    p.add_argument("--to", default="figures", help="where to write the PNGs (default figures/)")
    p.set_defaults(func=_cmd_figures)

    for name, func, text, results, to, to_help in [
        ("demo", _cmd_demo, "run the demo sweeps and write their figures", "results/demo", None,
         "figures folder (default RESULTS/figures; the committed figures/ stay untouched)"),
        ("reproduce", _cmd_reproduce, "run the experiments and write their figures (~15 min; "
         "--full: all of them)",
         "results", "figures", "figures folder (default figures/)"),
    ]:
        p = sub.add_parser(name, help=text)
        p.add_argument("--results", default=results, help=f"results folder (default {results}/)")
        p.add_argument("--to", default=to, help=to_help)
        p.add_argument("--experiments", default=None, help="folder of experiment TOMLs")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        if name == "reproduce":
            p.add_argument("--only", nargs="*", help="experiment names (default: all but the "
                           "slowest, which --full adds)")
            p.add_argument("--full", action="store_true",
                           help="also run the slowest experiments (REPRODUCE_FULL_ONLY)")
        p.set_defaults(func=func)

    from toymodels.lm import cli as lm_cli    # imports no torch until an lm command runs

    lm_cli.register(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Only toymodels' own messages: JAX logs its backend probing at INFO on the root logger.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO if args.verbose or args.command != "figures" else logging.WARNING)
    try:
        args.func(args)
    except ValueError as err:
        parser.exit(2, f"toymodels: error: {err}\n")


if __name__ == "__main__":
    main()
