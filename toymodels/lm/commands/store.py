"""`toymodels lm harvest | info`: fill an activation store and describe one."""

from __future__ import annotations

import argparse
import json
import sys

from toymodels.lm.commands._args import text_lines


def add_harvest(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True,
                   help="a Hugging Face model name (e.g. gpt2; downloads need a connection), a "
                        "folder save_pretrained wrote, or all-MiniLM-L6-v2 (the local copy the lm "
                        "extra installs)")
    p.add_argument("--site", action="append", required=True, metavar="SITE",
                   help="a site to keep, e.g. blocks.3.hook_resid_post; repeat it (or give a "
                        "comma-separated list) for several sites, all read in one forward pass")
    p.add_argument("--texts", default=None,
                   help="a UTF-8 file with one text per line (default: the 4,000-sentence corpus "
                        "shipped with toymodels)")
    p.add_argument("--limit", type=int, default=None,
                   help="harvest only the first LIMIT texts (e.g. to hold the rest out)")
    p.add_argument("--out", required=True,
                   help="the store folder; re-run the same command to resume a killed harvest")
    p.add_argument("--tokenizer", default=None, help="a tokenizer name or folder (default: the model's)")
    p.add_argument("--batch-size", type=int, default=32, help="texts per forward pass (default 32)")
    p.add_argument("--max-length", type=int, default=128,
                   help="tokens per text at most; longer texts are truncated (default 128)")
    p.add_argument("--drop-special-tokens", action="store_true",
                   help="also drop [CLS], [SEP], BOS … (padding is always dropped)")
    p.add_argument("--prepend-bos", action="store_true",
                   help="put the tokenizer's BOS token first (GPT-2 as TransformerLens runs it)")
    p.add_argument("--shard", default=None, metavar="I/N",
                   help="harvest every N-th batch starting at batch I into OUT/part-I-of-N/ (run "
                        "I = 0 … N-1 in separate processes or hosts; the store is complete when "
                        "all N have finished)")
    p.add_argument("--tokens-per-shard", type=int, default=1 << 16,
                   help="tokens per shard file (default 65536): the work a killed harvest redoes")
    p.add_argument("--dtype", choices=("float32", "float16"), default="float32",
                   help="how activations are stored (default float32)")
    p.add_argument("--device", default=None, help="torch device, e.g. cuda (default: cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run_harvest(args) -> None:
    from toymodels.lm.harvesting import harvest
    from toymodels.lm.texts import corpus_path

    sites = [s.strip() for arg in args.site for s in arg.split(",") if s.strip()]
    texts = args.texts or corpus_path()
    if args.limit is not None:
        texts = text_lines(texts, limit=args.limit)
    store = harvest(args.model, sites, texts, args.out,
                    tokenizer=args.tokenizer, batch_size=args.batch_size,
                    max_length=args.max_length, drop_special_tokens=args.drop_special_tokens,
                    prepend_bos=args.prepend_bos, shard=args.shard,
                    tokens_per_shard=args.tokens_per_shard, dtype=args.dtype, device=args.device,
                    progress=False if args.quiet else None)
    print(f"{len(store)} tokens of {len(store.sites)} site(s) in {store.path}")



def add_info(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", help="a store folder")
    p.add_argument("--no-verify", action="store_true", help="skip the SHA-256 check of the shards")
    p.add_argument("--json", action="store_true", help="print the manifest(s) as JSON")


def run_info(args) -> None:
    from toymodels.lm.store import ActivationStore

    store = ActivationStore(args.store, verify=not args.no_verify, partial=True)
    if args.json:
        json.dump(store.parts if len(store.parts) > 1 else store.manifest, sys.stdout, indent=1)
        print()
        return
    m = store.manifest
    done = all(p["complete"] for p in store.parts) and len(store.parts) == m["part"][1]
    print(f"{store.path}: {len(store)} tokens, {store.n_shards} shards, "
          f"{len(store.parts)} part(s){'' if done else ', UNFINISHED'}")
    print(f"  model {m['model']} ({m['architecture']}), tokenizer {m['tokenizer']}, {m['dtype']}")
    for s in store.sites:
        print(f"  {s}  d={m['d'][s]}")
    print(f"  texts: {m['texts']['count']} from {m['texts']['source']}"
          f", settings {m['settings']}")

