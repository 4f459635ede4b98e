"""The language-model feature figures: what they draw, and clear refusals (no model needed)."""

import io

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from PIL import Image

from toymodels.plots import lm as lm_plots


def png(fig: Figure) -> Image.Image:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=60)
    buffer.seek(0)
    return Image.open(buffer)


def test_heatmap_shows_each_tokens_top_latents_in_order_of_their_peak():
    f = np.zeros((4, 10))
    f[0, 7], f[1, 2], f[2, 2], f[3, 5], f[3, 1] = 1.0, 2.0, 0.5, 3.0, 0.1
    chosen = lm_plots.heatmap_latents(f, k=1)
    np.testing.assert_array_equal(chosen, [7, 2, 5])          # peaks at tokens 0, 1, 3
    assert list(lm_plots.heatmap_latents(f, k=2)) == [7, 2, 5, 1]
    assert list(lm_plots.heatmap_latents(f, k=2, max_latents=2)) == [2, 5]
    fig = lm_plots.token_latent_heatmap(["a", "b", "c", "$d"], f, k=2)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["7", "2", "5", "1"]
    assert len(ax.get_xticklabels()) == 4
    assert png(fig).size[0] > 100
    with pytest.raises(ValueError, match="no latent fires"):
        lm_plots.token_latent_heatmap(["a"], np.zeros((1, 3)))
    with pytest.raises(ValueError, match="feature_acts"):
        lm_plots.token_latent_heatmap(["a", "b"], np.zeros((3, 3)))


class Ctx:
    def __init__(self, tokens, acts, index):
        self.tokens, self.feature_acts, self.index = tokens, np.asarray(acts, float), index

    @property
    def value(self):
        return float(self.feature_acts[self.index])


def test_contexts_are_aligned_at_their_token():
    contexts = [Ctx(["x", "y", "HIT", "z"], [0, 0.2, 3.0, 0], 2),
                Ctx(["HIT", "w"], [2.0, 0.1], 0)]
    fig = lm_plots.latent_contexts(contexts, 4, density=0.012, promoted=[("tok", 1.0)])
    ax = fig.axes[0]
    image = ax.get_images()[0].get_array()
    assert image.shape == (2, 4)                           # 2 before the hit, hit, 1 after
    assert image[0, 2] == 3.0 and image[1, 2] == 2.0 and np.ma.is_masked(image[1, 0])
    assert "1.2 %" in ax.get_title() and "tok" in ax.get_title()
    png(fig)
    with pytest.raises(ValueError, match="never fires"):
        lm_plots.latent_contexts([], 4)


def test_contrast_strips_draw_the_strongest_significant_latents():
    rng = np.random.default_rng(0)
    acts = {"a": rng.random((5, 6)), "b": rng.random((7, 6))}
    table = pd.DataFrame({"set": ["a"] * 4, "latent": [3, 1, 3, 5], "effect": [0.9, -0.95, 0.9, 0.2],
                          "p": [1e-4] * 4, "q": [1e-3, 1e-3, 1e-3, 0.5],
                          "significant": [True, True, True, False]})
    assert list(lm_plots.strip_latents(table).latent) == [1, 3]
    fig = lm_plots.contrast_strips(table, acts)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 2
    strips = [c for c in visible[0].collections if isinstance(c, PathCollection)]
    assert len(strips) == 2                                # one strip per set, its prompts' values
    np.testing.assert_allclose(strips[1].get_offsets()[:, 1], acts["b"][:, 1])
    assert "latent 1" in visible[0].get_title()
    png(fig)
    with pytest.raises(ValueError, match="no latent separates"):
        lm_plots.contrast_strips(table.assign(significant=False), acts)
