"""SAE files of other libraries, read into `tm.SAE` (and, for SAELens, written from it), so that a
pre-trained dictionary is analysed exactly like one trained here.

- `saelens`: SAELens 6 folders (`cfg.json` + `sae_weights.safetensors`), `save` and `load`;
- `dictionary_learning`: saprmarks/dictionary_learning's `config.json` + `ae.pt` (needs torch);
- `sparsify`: EleutherAI/sparsify's `cfg.json` + `sae.safetensors`.

Each maps its format's forward pass exactly onto a tm.SAE architecture, and refuses, with the
reason, what has no exact equivalent. A malformed folder raises a ValueError naming the file.
"""

from toymodels.io import dictionary_learning, saelens, sparsify

__all__ = ["dictionary_learning", "saelens", "sparsify"]
