"""The `toymodels` command: TOML experiments, sweeps to a folder, errors."""

import dataclasses

import pytest

import toymodels as tm
from toymodels.cli import main
from toymodels.experiment import Experiment

TOML = """
name = "tiny"
[model]
n_features = 4
d_hidden = 2
importance_decay = 0.9
[train]
steps = 40
batch_size = 64
log_every = 20
[grid]
feature_probability = {geomspace = [1.0, 0.1, 3]}
seed = {range = [0, 2]}
"""


def test_sweep_command_writes_results(tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(TOML)
    main(["sweep", str(config), "--out", str(tmp_path / "out"), "--quiet"])
    ds = tm.load_results(tmp_path / "out")
    assert ds.W.shape == (3, 2, 4, 2)
    assert ds.feature_probability.values.tolist() == pytest.approx([1.0, 0.31622776601683794, 0.1])
    assert str(tmp_path / "out" / "results.nc") in capsys.readouterr().out


def test_every_shipped_experiment_parses():
    from toymodels.cli import _experiments_dir

    files = sorted(_experiments_dir(None).glob("*.toml"))
    assert len(files) >= 8
    for f in files:
        exp = Experiment.from_toml(f)
        assert exp.grid
        if f.stem.startswith("tms_"):  # the TMS notebook's 10,000 steps
            assert exp.train.steps == 10_000


SAE_TOML = """
name = "tiny_sae"
[sae]
d_in = 2
d_sae = 4
[train]
steps = 40
batch_size = 64
log_every = 20
[grid]
l1_coefficient = [0.01, 0.1]
[data]
kind = "toy_activations"
[data.model]
n_features = 4
d_hidden = 2
feature_probability = 0.1
[data.train]
steps = 40
log_every = 20
[data.grid]
seed = [0, 1]
"""


def test_sae_experiment_trains_its_toy_models_first(tmp_path):
    config = tmp_path / "tiny_sae.toml"
    config.write_text(SAE_TOML)
    main(["sweep", str(config), "--out", str(tmp_path / "out"), "--quiet"])
    ds = tm.load_results(tmp_path / "out")
    assert ds.W_dec.dims == ("toy_seed", "l1_coefficient", "latent", "d_in")
    assert ds.dictionary.dims == ("toy_seed", "feature", "d_in")
    toy = tm.load_results(tmp_path / "out" / "toy")
    assert toy.W.dims == ("seed", "feature", "hidden")
    main(["figures", str(tmp_path / "out"), "--to", str(tmp_path / "figs")])
    assert (tmp_path / "figs" / "sae_toy_directions.png").exists()


def test_sae_experiment_on_ground_truth(tmp_path):
    config = tmp_path / "gt.toml"
    config.write_text("""
[sae]
d_in = 8
d_sae = 8
[train]
steps = 20
batch_size = 32
log_every = 20
[grid]
l1_coefficient = [0.01, 0.1]
d_sae = [4, 8]
[data]
kind = "ground_truth"
d_in = 8
n_features = 6
mean_active = 2.0
""")
    main(["sweep", str(config), "--out", str(tmp_path / "out"), "--quiet"])
    ds = tm.load_results(tmp_path / "out")
    assert ds.W_dec.dims == ("l1_coefficient", "d_sae", "latent", "d_in")
    assert ds.dictionary.dims == ("feature", "d_in")


@pytest.mark.parametrize("bad, field", [
    ("[model]\nn_features = 0\n", "n_features"),
    ("[model]\nwidth = 3\n", "width"),
    ("[grid]\nfeature_probability = {logspace = [0, -1]}\n", "feature_probability"),
    ("[grid]\nfeature_probability = [2.0]\n", "feature_probability"),
    ("[sweep]\n", "sweep"),
    ("[sae]\nd_in = 2\nd_sae = 4\n", "data"),
    ("[sae]\nd_in = 2\nd_sae = 4\n[data]\nkind = \"lm\"\n", "kind"),
    ("[sae]\nd_in = 2\nd_sae = 4\n[data]\nkind = \"ground_truth\"\nd_in = 3\n", "d_in"),
])
def test_bad_experiment_exits_with_the_field_named(tmp_path, capsys, bad, field):
    config = tmp_path / "bad.toml"
    config.write_text(bad)
    with pytest.raises(SystemExit) as exit_:
        main(["sweep", str(config), "--out", str(tmp_path / "out"), "--quiet"])
    assert exit_.value.code == 2
    assert field in capsys.readouterr().err


def test_readme_documents_every_config_field():
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for cls in (tm.ToyModelConfig, tm.TrainConfig, tm.SAEConfig):
        for f in dataclasses.fields(cls):
            assert f"| `{f.name}` |" in readme, f.name


def test_demo_figures_go_inside_its_results_folder_not_the_committed_figures():
    from pathlib import Path

    from toymodels.cli import build_parser, demo_figures_dir

    committed = (Path(__file__).parent.parent / "figures").resolve()
    default = demo_figures_dir(build_parser().parse_args(["demo"]))
    assert default == Path("results/demo/figures")
    assert default.resolve() != committed and Path.cwd().joinpath(default).resolve() != committed
    assert demo_figures_dir(build_parser().parse_args(["demo", "--results", "r"])) == Path("r/figures")
    assert demo_figures_dir(build_parser().parse_args(["demo", "--to", "elsewhere"])) == Path("elsewhere")
    # reproduce is what regenerates the committed figures.
    assert build_parser().parse_args(["reproduce"]).to == "figures"


def test_demo_command_writes_and_names_its_figure_folder(tmp_path, capsys, monkeypatch):
    import toymodels.cli as cli

    (tmp_path / "tiny.toml").write_text(TOML)
    monkeypatch.setattr(cli, "DEMO", ("tiny",))
    main(["demo", "--experiments", str(tmp_path), "--results", str(tmp_path / "demo"), "--quiet"])
    figures = tmp_path / "demo" / "figures"
    assert sorted(p.name for p in figures.iterdir()) == ["tms_intro.png"]
    assert f"its figures are in {figures}/" in capsys.readouterr().out


def test_reproduce_leaves_the_slowest_to_full_and_prints_its_times(tmp_path, capsys, monkeypatch):
    import toymodels.cli as cli

    (tmp_path / "tiny.toml").write_text(TOML)
    (tmp_path / "slow.toml").write_text(TOML.replace('name = "tiny"', 'name = "slow"'))
    monkeypatch.setattr(cli, "REPRODUCE_FULL_ONLY", ("slow",))
    main(["reproduce", "--experiments", str(tmp_path), "--results", str(tmp_path / "r"),
          "--to", str(tmp_path / "figures"), "--quiet"])
    out = capsys.readouterr().out
    assert (tmp_path / "r" / "tiny" / "results.nc").exists()
    assert not (tmp_path / "r" / "slow").exists()
    lines = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.startswith("  ")}
    assert set(lines) == {"tiny", "figures", "total"}
    assert float(lines["total"][0]) >= float(lines["tiny"][0]) + float(lines["figures"][0]) - 0.2
    assert "not run (reproduce --full runs them): slow" in out
    assert cli.reproduce_names(tmp_path, None, full=True) == ["slow", "tiny"]
    assert cli.reproduce_names(tmp_path, ["slow"], full=False) == ["slow"]


def test_the_full_only_experiments_exist():
    from toymodels.cli import REPRODUCE_FULL_ONLY, _experiments_dir

    shipped = {p.stem for p in _experiments_dir(None).glob("*.toml")}
    assert set(REPRODUCE_FULL_ONLY) <= shipped
