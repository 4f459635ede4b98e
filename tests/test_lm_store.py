"""The activation store without a model: shards, manifest, integrity checks, the batch stream."""

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("safetensors")

from toymodels.lm.store import (  # noqa: E402
    FORMAT,
    VERSION,
    ActivationStore,
    PartWriter,
    part_folder,
    text_hash,
    update_text_hash,
)

SITES = ["blocks.0.hook_resid_post", "blocks.1.mlp.hook_in"]
D = {SITES[0]: 3, SITES[1]: 2}


def header(part=(0, 1), dtype="float32", sites=SITES):
    return {"format": FORMAT, "version": VERSION, "model": "synthetic", "tokenizer": "synthetic",
            "architecture": "bert", "sites": list(sites), "d": {s: D[s] for s in sites},
            "dtype": dtype, "settings": {"batch_size": 1, "max_length": 8,
                                         "drop_special_tokens": False, "prepend_bos": False},
            "part": list(part)}


def texts_sha256(n):
    h = text_hash()
    for k in range(n):
        update_text_hash(h, f"text {k}")
    return h.hexdigest()


def write_store(folder, shard_rows, *, dtype="float32", part=(0, 1), first_row=0, n_texts=None):
    """A finished store whose row r (counted from `first_row`) holds r in every activation column:
    site 0 = (r, r, r), site 1 = (-r, -r); text r // 3, position r % 3, token id 1000 + r."""
    writer = PartWriter(folder, header(part, dtype), "<synthetic>")
    r = first_row
    for rows in shard_rows:
        ids = np.arange(r, r + rows)
        arrays = {SITES[0]: np.repeat(ids[:, None], 3, 1).astype(dtype),
                  SITES[1]: -np.repeat(ids[:, None], 2, 1).astype(dtype),
                  "token_ids": (1000 + ids).astype(np.int32), "doc": ids // 3,
                  "position": (ids % 3).astype(np.int32)}
        r += rows
        writer.write_shard(arrays, texts_done=r // 3, texts_sha256=texts_sha256(r // 3),
                           docs_at_max_length=0)
    n_texts = r // 3 if n_texts is None else n_texts
    writer.finish(texts_done=n_texts, texts_sha256=texts_sha256(n_texts), docs_at_max_length=0)
    return folder


@pytest.fixture
def store_path(tmp_path):
    return write_store(tmp_path / "store", [30, 12, 21, 9])     # 72 rows = 24 texts


def ids_of(batch):
    return batch[:, 0].astype(np.int64)


def stream_rows(store, batch_size, n_rows, **kw):
    """The first n_rows row ids of the batch stream."""
    out, it = [], store.batches(batch_size, **kw)
    while sum(map(len, out)) < n_rows:
        out.append(ids_of(next(it)))
    return np.concatenate(out)[:n_rows]


def test_sizes_and_selection(store_path):
    store = ActivationStore(store_path, site=SITES[0])
    assert len(store) == 72 and store.d_in == 3 and store.d_out is None
    assert store.sites == tuple(SITES) and store.n_shards == 4
    both = ActivationStore(store_path, site=[SITES[1], SITES[0]], target_site=SITES[0])
    assert both.d_in == 5 and both.d_out == 3
    x, y = both.read([5, 40])
    np.testing.assert_array_equal(x, [[-5, -5, 5, 5, 5], [-40, -40, 40, 40, 40]])
    np.testing.assert_array_equal(y, [[5, 5, 5], [40, 40, 40]])


def test_several_sites_need_a_choice(store_path):
    store = ActivationStore(store_path)
    with pytest.raises(ValueError, match="several sites"):
        store.d_in
    with pytest.raises(ValueError, match="several sites"):
        store.batches(4)
    assert store.select(site=SITES[1]).d_in == 2
    with pytest.raises(ValueError, match="blocks.7.hook_resid_pre"):
        ActivationStore(store_path, site="blocks.7.hook_resid_pre")
    with pytest.raises(ValueError, match="blocks.7.hook_mlp_out.*holds"):
        store.select(site=SITES[0], target_site="blocks.7.hook_mlp_out")


def test_index_arrays_and_contexts(store_path):
    store = ActivationStore(store_path, site=SITES[0])
    np.testing.assert_array_equal(store.token_ids, 1000 + np.arange(72))
    np.testing.assert_array_equal(store.doc_index, np.arange(72) // 3)
    np.testing.assert_array_equal(store.position, np.arange(72) % 3)
    assert store.token_ids.dtype == np.int32 and store.doc_index.dtype == np.int64
    assert store.document(31) == slice(30, 33)
    tokens, at = store.context(31, before=5, after=5)
    np.testing.assert_array_equal(tokens, [1030, 1031, 1032])
    assert at == 1


def test_chunks_read_the_store_in_order(store_path):
    store = ActivationStore(store_path, site=SITES[0])
    chunks = list(store.chunks(20))
    assert [len(c) for c in chunks] == [20, 20, 20, 12]
    np.testing.assert_array_equal(ids_of(np.concatenate(chunks)), np.arange(72))


def test_batches_shapes_dtypes_and_pairs(tmp_path):
    store = ActivationStore(write_store(tmp_path / "s", [10, 10], dtype="float16"),
                            site=SITES[0], target_site=SITES[1])
    x, y = next(store.batches(7, seed=3))
    assert x.shape == (7, 3) and y.shape == (7, 2)
    assert x.dtype == np.float32 and y.dtype == np.float32
    np.testing.assert_array_equal(x[:, 0], -y[:, 0])        # the same tokens, row by row


def test_batches_are_deterministic_per_seed(store_path):
    store = ActivationStore(store_path, site=SITES[0])
    a = stream_rows(store, 8, 200, seed=1, shuffle_buffer=16)
    np.testing.assert_array_equal(a, stream_rows(store, 8, 200, seed=1, shuffle_buffer=16))
    assert not np.array_equal(a, stream_rows(store, 8, 200, seed=2, shuffle_buffer=16))


def test_each_epoch_is_a_permutation_reshuffled(store_path):
    store = ActivationStore(store_path, site=SITES[0])
    rows = stream_rows(store, 5, 3 * 72, seed=0, shuffle_buffer=16)
    epochs = rows.reshape(3, 72)
    for e in epochs:
        np.testing.assert_array_equal(np.sort(e), np.arange(72))
    assert not np.array_equal(epochs[0], epochs[1])


def test_batches_mix_shards(tmp_path):
    # 8 shards of 50 rows; a buffer of two shards' worth: early batches draw from several shards
    store = ActivationStore(write_store(tmp_path / "s", [50] * 8), site=SITES[0])
    first = [ids_of(b) for _, b in zip(range(10), store.batches(32, seed=0, shuffle_buffer=100))]
    shards_per_batch = [len(np.unique(b // 50)) for b in first]
    assert min(shards_per_batch[4:]) >= 2, shards_per_batch
    # and the shard read first is not always shard 0
    starts = {int(ids_of(next(store.batches(32, seed=s, shuffle_buffer=100)))[0] // 50)
              for s in range(8)}
    assert len(starts) > 1


@settings(max_examples=25, deadline=None)
@given(shard_rows=st.lists(st.integers(1, 40), min_size=1, max_size=5),
       batch_size=st.integers(1, 50), buffer=st.integers(1, 200), seed=st.integers(0, 2**31))
def test_stream_is_a_sequence_of_permutations(shard_rows, batch_size, buffer, seed):
    shard_rows = [3 * r for r in shard_rows]                # whole texts of 3 tokens
    with tempfile.TemporaryDirectory() as tmp:
        store = ActivationStore(write_store(Path(tmp) / "s", shard_rows), site=SITES[0])
        n = len(store)
        rows = stream_rows(store, batch_size, 2 * n, seed=seed, shuffle_buffer=buffer)
        for epoch in rows.reshape(2, n):
            np.testing.assert_array_equal(np.sort(epoch), np.arange(n))


def test_bad_batch_arguments(store_path):
    store = ActivationStore(store_path, site=SITES[0])
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="batch_size"):
            store.batches(bad)
    with pytest.raises(ValueError, match="shuffle_buffer"):
        store.batches(4, shuffle_buffer=0)


def test_truncated_shard_is_named(store_path):
    shard = store_path / "shard-00002.safetensors"
    data = shard.read_bytes()
    shard.write_bytes(data[:-10])
    with pytest.raises(ValueError, match="shard-00002.safetensors.*truncated"):
        ActivationStore(store_path, verify=False)


def test_corrupt_shard_is_named(store_path):
    shard = store_path / "shard-00001.safetensors"
    data = bytearray(shard.read_bytes())
    data[-5] ^= 0xFF                                          # same size, one byte flipped
    shard.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="shard-00001.safetensors.*corrupt"):
        ActivationStore(store_path)
    ActivationStore(store_path, verify=False)                 # sizes alone cannot see it


def test_missing_shard_and_bad_manifest(store_path):
    (store_path / "shard-00003.safetensors").unlink()
    with pytest.raises(ValueError, match="shard-00003.safetensors.*missing"):
        ActivationStore(store_path)
    (store_path / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="manifest"):
        ActivationStore(store_path)


def test_unlisted_files_are_never_read(store_path):
    # what a writer killed mid-shard leaves: a temp file, and a renamed shard not yet listed
    (store_path / ".shard-00004.safetensors.abc.tmp").write_bytes(b"half a shard")
    (store_path / "shard-00004.safetensors").write_bytes(b"not listed yet")
    assert len(ActivationStore(store_path, site=SITES[0])) == 72


def test_unfinished_store_is_refused_unless_partial(tmp_path):
    writer = PartWriter(tmp_path, header(), "<synthetic>")
    ids = np.arange(6)
    writer.write_shard({SITES[0]: np.zeros((6, 3), np.float32), SITES[1]: np.zeros((6, 2), np.float32),
                        "token_ids": ids.astype(np.int32), "doc": ids // 3,
                        "position": (ids % 3).astype(np.int32)},
                       texts_done=2, texts_sha256="x", docs_at_max_length=0)
    with pytest.raises(ValueError, match="unfinished"):
        ActivationStore(tmp_path)
    assert len(ActivationStore(tmp_path, partial=True)) == 6


def test_writer_refuses_another_harvest(tmp_path):
    PartWriter(tmp_path, header(), "<synthetic>")
    other = header()
    other["settings"]["max_length"] = 16
    with pytest.raises(ValueError, match="different harvest.*settings"):
        PartWriter(tmp_path, other, "<synthetic>")


def test_parts_join_and_must_all_be_there(tmp_path):
    write_store(tmp_path / part_folder(0, 2), [9, 6], part=(0, 2), n_texts=9)
    with pytest.raises(ValueError, match=r"lacks part\(s\) \[1\] of 2"):
        ActivationStore(tmp_path)
    assert len(ActivationStore(tmp_path, partial=True, site=SITES[0])) == 15
    write_store(tmp_path / part_folder(1, 2), [12], part=(1, 2), first_row=15, n_texts=9)
    store = ActivationStore(tmp_path, site=SITES[0])
    assert len(store) == 27 and store.n_shards == 3
    np.testing.assert_array_equal(ids_of(np.concatenate(list(store.chunks(100)))), np.arange(27))
    assert store.document(16) == slice(15, 18)


def test_manifest_lists_shards_with_sizes_and_checksums(store_path):
    m = json.loads((store_path / "manifest.json").read_text())
    assert m["complete"] and m["tokens"] == 72
    assert [s["tokens"] for s in m["shards"]] == [30, 12, 21, 9]
    for s in m["shards"]:
        assert (store_path / s["file"]).stat().st_size == s["bytes"]
    assert m["shards"][1]["docs"] == [10, 14]
    from safetensors.numpy import load_file     # any safetensors reader opens a shard
    arrays = load_file(str(store_path / "shard-00001.safetensors"))
    np.testing.assert_array_equal(arrays["token_ids"], 1000 + np.arange(30, 42))


def test_describe_names_the_data_not_the_folder(tmp_path):
    a = ActivationStore(write_store(tmp_path / "a", [30, 12]), site=SITES[0])
    d = a.describe()
    assert json.loads(json.dumps(d)) == d                              # JSON-able
    assert d["site"] == [SITES[0]] and d["d_in"] == 3 and d["tokens"] == 42
    assert d["model"] == "synthetic" and d["target_site"] is None
    assert ActivationStore(write_store(tmp_path / "b", [30, 12]), site=SITES[0]).describe() == d
    other = ActivationStore(write_store(tmp_path / "c", [30, 15]), site=SITES[0]).describe()
    assert other["manifest_sha256"] != d["manifest_sha256"]
    pairs = a.select(site=SITES[1], target_site=SITES[0]).describe()
    assert pairs["d_out"] == 3 and pairs["manifest_sha256"] == d["manifest_sha256"]
    with pytest.raises(ValueError, match="several sites"):
        ActivationStore(tmp_path / "a").describe()
