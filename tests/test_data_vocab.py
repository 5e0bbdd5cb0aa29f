"""Tests of the vocabularies: id order, unknown and missing values, hashing, checkpoints."""

import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minirec.data.vocab import (PAD, UNK, HashedVocabulary, Vocabulary, to_keys,
                                vocabulary_from_dict)

REPO = Path(__file__).resolve().parents[1]


def test_build_orders_by_count_then_string():
    # counts: b 3, a 2, c 1 -> ids b 2, a 3, c 4; None and "" are missing, not counted
    vocabulary = Vocabulary.build(["b", "a", "b", "c", "a", "b", None, ""])
    assert vocabulary.values.tolist() == ["b", "a", "c"]
    assert vocabulary.counts.tolist() == [3, 2, 1]
    assert vocabulary.size == 5
    assert vocabulary.encode(["a", "z", None, "", "b", "c"]).tolist() == [3, 1, 1, 1, 2, 4]


def test_ties_use_string_order():
    # 9 and 10 occur twice each; as strings "10" < "9", so 10 gets id 2
    for values in ([9, 10, 9, 10], ["9", "10", "9", "10"], np.array([9, 10, 9, 10])):
        vocabulary = Vocabulary.build(values)
        assert vocabulary.values.tolist() == ["10", "9"]
        assert vocabulary.encode([10, 9]).tolist() == [2, 3]
        assert vocabulary.encode(["10", "9"]).tolist() == [2, 3]


def test_min_count_and_max_size():
    values = ["x"] * 3 + ["y"] * 2 + ["z"]
    vocabulary = Vocabulary.build(values, min_count=2)
    assert vocabulary.values.tolist() == ["x", "y"]
    assert vocabulary.encode(["z"]).tolist() == [UNK]
    assert vocabulary.min_count == 2
    assert Vocabulary.build(values, max_size=1).values.tolist() == ["x"]


def test_encode_keeps_shape_and_dtype():
    vocabulary = Vocabulary.build(["a", "b", "b"])
    ids = vocabulary.encode(np.array([["a", "b"], ["", "q"]]))
    assert ids.dtype == np.int64
    assert ids.tolist() == [[3, 2], [UNK, UNK]]


def test_float_nan_is_missing():
    vocabulary = Vocabulary.build(np.array([1.5, np.nan, 1.5]))
    assert vocabulary.values.tolist() == ["1.5"]
    assert vocabulary.encode(np.array([np.nan, 1.5])).tolist() == [UNK, 2]


def test_empty_vocabulary_maps_everything_to_unknown():
    vocabulary = Vocabulary.build([None, ""])
    assert vocabulary.size == 2
    assert vocabulary.encode(["a", "b"]).tolist() == [UNK, UNK]


def test_decode():
    vocabulary = Vocabulary.build(["b", "a", "b"])
    assert vocabulary.decode([PAD, UNK, 2, 3]).tolist() == ["<pad>", "<unk>", "b", "a"]
    with pytest.raises(ValueError, match="id 4 is out of range"):
        vocabulary.decode([4])
    with pytest.raises(ValueError, match="id -1 is out of range"):
        vocabulary.decode([-1])


def test_dict_round_trip_is_json_ready():
    vocabulary = Vocabulary.build(["b", "a", "b", 7], min_count=1, name="genre")
    data = json.loads(json.dumps(vocabulary.to_dict()))
    rebuilt = Vocabulary.from_dict(data)
    assert rebuilt == vocabulary
    assert vocabulary_from_dict(data) == vocabulary
    assert rebuilt.encode(["a", "b", "7", "q"]).tolist() == vocabulary.encode(
        ["a", "b", "7", "q"]).tolist()


def test_invalid_arguments_raise():
    with pytest.raises(ValueError, match="min_count must be a positive integer, got 0"):
        Vocabulary.build(["a"], min_count=0)
    with pytest.raises(ValueError, match="max_size"):
        Vocabulary.build(["a"], max_size=-1)
    with pytest.raises(ValueError, match="unique"):
        Vocabulary(["a", "a"])
    with pytest.raises(ValueError, match="missing"):
        Vocabulary(["a", None])
    with pytest.raises(ValueError, match="counts has 1 entries for 2 values"):
        Vocabulary(["a", "b"], [1])
    with pytest.raises(ValueError, match="'type'"):
        vocabulary_from_dict({"values": []})
    with pytest.raises(ValueError, match="expected data of a HashedVocabulary"):
        HashedVocabulary.from_dict(Vocabulary.build(["a"]).to_dict())


def test_hashed_vocabulary_uses_crc32():
    # CRC-32 of b"abc" is 0x352441C2 = 891568578, and 891568578 % 10 = 8, so id 2 + 8
    vocabulary = HashedVocabulary(10, name="C1")
    assert vocabulary.size == 12
    assert vocabulary.encode(["abc", "", None]).tolist() == [10, UNK, UNK]
    assert zlib.crc32(b"abc") == 891568578
    assert vocabulary.decode([0, 1, 10]).tolist() == ["<pad>", "<unk>", "<bucket 8>"]
    assert HashedVocabulary.from_dict(json.loads(json.dumps(vocabulary.to_dict()))) == vocabulary
    with pytest.raises(ValueError, match="num_buckets must be a positive integer"):
        HashedVocabulary(0)


def test_hashed_ids_stay_in_range():
    vocabulary = HashedVocabulary(3)
    ids = vocabulary.encode([f"value{i}" for i in range(200)])
    assert ids.min() >= 2
    assert ids.max() <= 4
    assert len(np.unique(ids)) == 3


def test_to_keys_rejects_unsupported_dtype():
    with pytest.raises(TypeError, match="dtype"):
        to_keys(np.array([1 + 2j]))


values_strategy = st.lists(
    st.one_of(st.integers(-5, 30), st.text(max_size=3), st.none()), max_size=40)


@settings(max_examples=60, deadline=None)
@given(train=values_strategy, other=values_strategy, min_count=st.integers(1, 3))
def test_vocabulary_properties(train, other, min_count):
    vocabulary = Vocabulary.build(np.array(train, dtype=object), min_count=min_count)
    keys = [None if v is None or v == "" else str(v) for v in train]
    counts = {k: keys.count(k) for k in keys if k is not None}
    known = {k for k, c in counts.items() if c >= min_count}
    assert set(vocabulary.values.tolist()) == known
    assert vocabulary.size == len(known) + 2

    queries = np.array(train + other, dtype=object)
    ids = vocabulary.encode(queries)
    for value, i in zip(train + other, ids.tolist()):
        key = None if value is None or value == "" else str(value)
        if key in known:
            assert 2 <= i < vocabulary.size
            assert vocabulary.values[i - 2] == key
        else:
            assert i == UNK
    # Ids follow descending count.
    assert all(np.diff(vocabulary.counts) <= 0)
    # Deterministic: building again, or from the checkpoint, gives the same ids.
    again = Vocabulary.build(np.array(list(train), dtype=object), min_count=min_count)
    assert np.array_equal(again.encode(queries), ids)
    assert np.array_equal(Vocabulary.from_dict(vocabulary.to_dict()).encode(queries), ids)


_ENCODE_SCRIPT = """
import json, sys
from minirec.data.vocab import Vocabulary, HashedVocabulary
words = ["w%d" % (i * 7919 % 101) for i in range(300)] + ["tie-b", "tie-a", "tie-c"]
vocabulary = Vocabulary.build(set(words))        # set order changes with PYTHONHASHSEED
hashed = HashedVocabulary(17)
print(json.dumps([vocabulary.encode(sorted(set(words))).tolist(),
                  hashed.encode(sorted(set(words))).tolist()]))
"""


def _encode_in_subprocess(seed: str) -> list:
    env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, "-c", _ENCODE_SCRIPT], env=env, check=True,
                            capture_output=True, text=True, cwd=REPO)
    return json.loads(result.stdout)


def test_ids_independent_of_pythonhashseed():
    first = _encode_in_subprocess("1")
    second = _encode_in_subprocess("2024")
    assert first == second
    # Every distinct word occurs once in the set, so ids follow string order from 2.
    assert first[0] == list(range(2, 2 + len(first[0])))
