"""Tests of the schema: field declarations and batch validation messages."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minirec.data.dataset import Dataset
from minirec.data.schema import Field, Schema, ids_in_range


@pytest.fixture
def schema():
    return Schema([
        Field("user", "sparse", vocab_size=5),
        Field("genres", "multi", vocab_size=4, max_len=3),
        Field("item", "sparse", vocab_size=6),
        Field("hist_item", "sequence", max_len=4, vocab_of="item", length="hist_length"),
        Field("age", "dense"),
    ])


@pytest.fixture
def batch():
    return {
        "user": np.array([2, 3]),
        "genres": np.array([[2, 3, 0], [0, 0, 0]]),
        "item": np.array([5, 2]),
        "hist_item": np.array([[2, 3, 0, 0], [0, 0, 0, 0]]),
        "hist_length": np.array([2, 0]),
        "age": np.array([0.5, 1.0]),
    }


def test_valid_batch_returns_size(schema, batch):
    assert schema.validate_batch(batch) == 2


def test_sequence_takes_vocabulary_of_its_source(schema):
    assert schema["hist_item"].vocab_size == 6
    assert schema.batch_keys()[-1] == "hist_length"


@pytest.mark.parametrize("key, value, message", [
    ("user", np.array([2, 5]), "field 'user' contains id 5.*0 to 4"),
    ("user", np.array([-1, 2]), "field 'user' contains id -1"),
    ("user", np.array([2.0, 3.0]), "field 'user' must be an integer id array"),
    ("age", np.array([1, 2]), "field 'age' must be a float array"),
    ("age", np.array([np.nan, 1.0]), "NaN"),
    ("genres", np.array([2, 3]), "field 'genres' must have shape"),
    ("hist_item", np.zeros((2, 5), dtype=np.int64), "longer than its declared maximum max_len=4"),
    ("genres", np.zeros((2, 4), dtype=np.int64), "multi field 'genres' has width 4.*max_len=3"),
    ("hist_length", np.array([5, 0]), "length 5.*\\[0, 4\\]"),
    ("hist_length", np.array([-1, 0]), "length -1"),
    ("item", np.array([2]), "same batch size"),
])
def test_bad_batches_name_field_and_value(schema, batch, key, value, message):
    batch[key] = value
    with pytest.raises(ValueError, match=message):
        schema.validate_batch(batch)


def test_missing_and_extra_keys(schema, batch):
    del batch["item"]
    with pytest.raises(ValueError, match="missing field.*'item'"):
        schema.validate_batch(batch)
    batch["item"] = np.array([2, 2])
    batch["extra"] = np.array([1, 1])
    with pytest.raises(ValueError, match="unexpected key.*'extra'"):
        schema.validate_batch(batch)


@pytest.mark.parametrize("kwargs, message", [
    (dict(name="", kind="sparse", vocab_size=3), "non-empty"),
    (dict(name="a", kind="categorical", vocab_size=3), "kind must be one of"),
    (dict(name="a", kind="sparse", vocab_size=0), "vocab_size must be a positive integer"),
    (dict(name="a", kind="multi", vocab_size=3, max_len=0), "max_len"),
    (dict(name="a", kind="sequence", max_len=3), "needs vocab_of"),
])
def test_bad_field_declarations(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Field(**kwargs)


def test_schema_rejects_duplicates_and_dangling_sequences():
    with pytest.raises(ValueError, match="repeated"):
        Schema([Field("a", "dense"), Field("a", "dense")])
    with pytest.raises(ValueError, match="vocab_of='item' must name a sparse field"):
        Schema([Field("h", "sequence", max_len=2, vocab_of="item")])


def test_schema_round_trips_through_dict(schema):
    assert Schema.from_dict(schema.to_dict()) == schema


def test_select_keeps_order_and_lengths(schema, batch):
    sub = schema.select(["item", "hist_item", "user"])
    assert [f.name for f in sub] == ["user", "item", "hist_item"]
    assert sub.batch_keys() == ["user", "item", "hist_item", "hist_length"]
    with pytest.raises(ValueError, match="unknown field"):
        schema.select(["nope"])


def test_dataset_batches_are_seeded_and_complete(schema, batch):
    data = Dataset(schema, batch, np.array([0, 1]), groups=np.array([7, 8]))
    first = [labels.tolist() for _, labels in data.batches(1, shuffle=True, random_state=3)]
    again = [labels.tolist() for _, labels in data.batches(1, shuffle=True, random_state=3)]
    assert first == again
    assert sorted(sum(first, [])) == [0, 1]
    features, labels = next(data.batches(2))
    assert set(features) == set(schema.batch_keys())
    np.testing.assert_array_equal(labels, [0, 1])


def test_dataset_rejects_ragged_columns(schema, batch):
    with pytest.raises(ValueError):
        Dataset(schema, batch, np.array([0, 1, 1]))


@pytest.mark.parametrize("dtype", ["i1", "i2", "i4", "i8", ">i8", "u1", "u2", "u8"])
@given(data=st.data())
def test_ids_in_range_matches_min_max(dtype, data):
    dtype = np.dtype(dtype)
    info = np.iinfo(dtype)
    values = data.draw(st.lists(st.integers(int(info.min), int(info.max)), max_size=6))
    num_ids = data.draw(st.integers(1, 2 * int(info.max) + 2))
    ids = np.array(values, dtype=dtype)
    expected = all(0 <= value < num_ids for value in values)
    assert ids_in_range(ids, num_ids) == expected


def test_ids_in_range_int16_large_vocabulary():
    # -30000 viewed as uint16 is 35536, which is below 40000, so the unsigned view alone
    # would accept it
    ids = np.array([5, -30000], dtype=np.int16)
    assert not ids_in_range(ids, 40_000)
    assert ids_in_range(np.array([5, 30000], dtype=np.int16), 40_000)
