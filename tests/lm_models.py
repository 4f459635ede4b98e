"""Small language models for the lm tests: a byte-level BPE tokenizer trained on the shipped
corpus, and randomly initialised models of every supported architecture (nothing is downloaded)."""

import transformers

from toymodels import lm


def tiny_tokenizer():
    """A byte-level BPE tokenizer like GPT-2's (no special tokens added), trained on the corpus."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator(lm.corpus(), trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<|endoftext|>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<|endoftext|>",
                                   eos_token="<|endoftext|>")


def tiny_config(kind: str, vocab: int):
    common = dict(vocab_size=vocab, hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
                  intermediate_size=64, max_position_embeddings=160)
    return {
        "bert": lambda: transformers.BertConfig(**common),
        "roberta": lambda: transformers.RobertaConfig(**common, pad_token_id=1),
        "gpt2": lambda: transformers.GPT2Config(vocab_size=vocab, n_embd=32, n_layer=3, n_head=2,
                                                n_positions=160, bos_token_id=0, eos_token_id=0),
        "llama": lambda: transformers.LlamaConfig(**common, num_key_value_heads=1),
        "qwen2": lambda: transformers.Qwen2Config(**common, num_key_value_heads=1),
        "mistral": lambda: transformers.MistralConfig(**common, num_key_value_heads=1),
    }[kind]()


def tiny_model(kind: str, vocab: int):
    import torch

    torch.manual_seed(0)
    return transformers.AutoModel.from_config(tiny_config(kind, vocab)).eval()
