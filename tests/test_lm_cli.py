"""`toymodels lm train-sae | evaluate | top-features | latent | contrast` on a small random GPT-2:
harvest → train → analyse from the command line, resumable, every option documented."""

import json
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import toymodels as tm  # noqa: E402
from toymodels import lm  # noqa: E402
from toymodels.cli import main  # noqa: E402
from toymodels.lm import cli as lm_cli  # noqa: E402
from toymodels.lm.commands.train_sae import summary_table  # noqa: E402
from lm_models import tiny_config, tiny_tokenizer  # noqa: E402  (tests/lm_models.py)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SITE = "blocks.1.hook_resid_post"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A GPT-2 with its LM head saved as a folder, a store of it, and a sweep of two SAEs."""
    root = tmp_path_factory.mktemp("cli")
    tokenizer = tiny_tokenizer()
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(tiny_config("gpt2", len(tokenizer))).eval()
    model.save_pretrained(root / "gpt2")
    tokenizer.save_pretrained(root / "gpt2")
    main(["lm", "harvest", "--model", str(root / "gpt2"), "--site", SITE, "--limit", "300",
          "--out", str(root / "acts"), "--quiet"])
    args = ["lm", "train-sae", str(root / "acts"), "--out", str(root / "sae"), "--expansion", "4",
            "--grid", "l1_coefficient=0.01,0.1", "--steps", "60", "--batch-size", "128",
            "--set", "b_dec_init_method=mean", "--quiet"]
    main(args)
    return root, args


def test_train_sae_writes_a_resumable_sweep(trained, capsys):
    root, args = trained
    ds = tm.load_results(root / "sae")
    assert ds.W_dec.dims == ("l1_coefficient", "latent", "d_in") and ds.sizes["latent"] == 128
    assert json.loads(ds.attrs["sae"])["b_dec_init_method"] == "mean"
    assert json.loads(ds.attrs["train"])["log_every"] == 3            # 60 / 20
    assert len(lm.ActivationStore(root / "acts")) == int(json.loads(ds.attrs["data"])["tokens"])
    main(args + ["--save-saelens", str(root / "saelens")])            # resumes: nothing to train
    out = capsys.readouterr().out
    assert "l0" in out and "dead" in out and "2 SAE(s) of 128 latents" in out
    saved = tm.saelens.load(root / "saelens" / "l1_coefficient=0.1")
    ours = lm.sae_from_sweep(ds, {"l1_coefficient": 0.1})
    for name, value in ours.params.items():
        np.testing.assert_array_equal(saved.params[name], value)
    assert saved.metadata["hook_name"] == SITE and saved.metadata["model_name"] == str(root / "gpt2")
    store = lm.ActivationStore(root / "acts")
    table = summary_table(ds, store)
    assert list(table.index) == [0.01, 0.1]
    assert list(table.columns) == ["l0", "fvu", "mse", "dead", "median_density", "diverged"]
    x = np.concatenate(list(store.chunks(4096)))                # the store is below the sample
    fires = lm.encode_rows(ours, x) > 0
    assert table.loc[0.1, "dead"] == pytest.approx(np.mean(~fires.any(0)))
    assert table.loc[0.1, "l0"] == pytest.approx(float(ds.l0.sel(l1_coefficient=0.1)))
    with pytest.raises(SystemExit, match="neither SAEConfig nor TrainConfig"):
        main(args[:-1] + ["--set", "colour=red"])


def test_evaluate_reports_lm_metrics(trained, capsys):
    root, _ = trained
    main(["lm", "evaluate", str(root / "sae"), "--point", "l1_coefficient=0.1", "--texts",
          str(lm.corpus_path()), "--skip", "300", "--limit", "20", "--store", str(root / "acts"),
          "--json", "--quiet"])
    out = capsys.readouterr().out
    report = json.loads(out[out.index("{"):])
    assert report["texts"] == 20
    for key in ("ce_clean", "ce_spliced", "ce_zero", "kl", "ce_recovered", "fvu", "l0",
                "dead_fraction"):
        assert key in report
    assert report["store_tokens"] == len(lm.ActivationStore(root / "acts"))


def test_top_features_prints_tokens_and_writes_a_heatmap(trained, tmp_path, capsys):
    root, _ = trained
    heatmap = tmp_path / "heat.png"
    main(["lm", "top-features", str(root / "sae"), "--point", "l1_coefficient=0.01", "--prompt",
          "The weather in Paris", "-k", "3", "--heatmap", str(heatmap)])
    lines = capsys.readouterr().out.splitlines()
    tokens = transformers.AutoTokenizer.from_pretrained(root / "gpt2")("The weather in Paris")
    assert lines[0].startswith("top 3 latents per token") and lines[1].lstrip().startswith("The")
    assert len(lines) == 1 + len(tokens["input_ids"]) + 1                 # header, tokens, "wrote"
    assert heatmap.stat().st_size > 1000
    with pytest.raises(SystemExit):
        main(["lm", "top-features", str(root / "sae"), "--prompt", "x", "--heatmap", ""])
    assert "choose a value of 'l1_coefficient'" in capsys.readouterr().err


def test_latent_and_contrast(trained, tmp_path, capsys):
    root, _ = trained
    sae = lm.sae_from_sweep(root / "sae", {"l1_coefficient": 0.01})
    stats = lm.latent_stats(lm.ActivationStore(root / "acts"), sae)
    latent = int(stats.max.argmax())
    figure = tmp_path / "latent.png"
    main(["lm", "latent", str(root / "sae"), str(latent), "--point", "l1_coefficient=0.01",
          "--store", str(root / "acts"), "-n", "4", "--figure", str(figure), "--quiet"])
    out = capsys.readouterr().out
    assert f"latent {latent}: fires on" in out and "promotes:" in out and out.count("«") == 4
    assert figure.stat().st_size > 1000

    (tmp_path / "a.txt").write_text("\n".join(lm.prompts()["happy"]))
    (tmp_path / "b.txt").write_text("\n".join(lm.prompts()["angry"]))
    csv, contexts = tmp_path / "table.csv", tmp_path / "contexts.png"
    main(["lm", "contrast", str(root / "sae"), "--point", "l1_coefficient=0.01", "--set",
          f"happy={tmp_path / 'a.txt'}", "--set", f"angry={tmp_path / 'b.txt'}", "--csv",
          str(csv), "--store", str(root / "acts"), "--contexts-figure", str(contexts), "--quiet"])
    out = capsys.readouterr().out
    assert "(set, latent) tests significant at FDR 0.05 (first against second" in out
    assert "happy: 48, angry: 48 prompts" in out
    assert re.search(r"\n(happy|angry): latent \d+ \(fires on", out)      # its store contexts
    assert contexts.stat().st_size > 1000
    import pandas as pd

    table = pd.read_csv(csv)
    assert set(table["set"]) == {"happy"} and {"effect", "q", "significant"} <= set(table.columns)


@pytest.mark.parametrize("name", [c[0] for c in lm_cli.COMMANDS])
def test_every_option_is_documented(name, capsys):
    import argparse

    parser = argparse.ArgumentParser()
    entry = next(c for c in lm_cli.COMMANDS if c[0] == name)
    entry[2](parser)
    for action in parser._actions:
        assert action.help, f"{name}: {action.dest} has no help"
    with pytest.raises(SystemExit) as exit_:
        main(["lm", name, "--help"])
    assert exit_.value.code == 0
    assert "usage: toymodels lm " + name in capsys.readouterr().out
