"""Tests of Embedding, EmbeddingBag and FieldEmbedding."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minirec.data.schema import Field
from minirec.gradcheck import check_gradients
from minirec.nn.base import SparseGrad
from minirec.nn.embedding import Embedding, EmbeddingBag, FieldEmbedding, check_ids

TOLERANCE = 1e-6


@st.composite
def padded_lists(draw, max_batch=4, max_width=4, vocab=6):
    """Draw (B, L) id lists with id 0 as padding; empty and fully padded rows included."""
    B = draw(st.integers(1, max_batch))
    L = draw(st.integers(1, max_width))
    rows = []
    for _ in range(B):
        length = draw(st.integers(0, L))
        real = draw(st.lists(st.integers(1, vocab - 1), min_size=length, max_size=length))
        # Padding usually trails the real ids, but a 0 in the middle must work too.
        row = real + [0] * (L - length)
        if draw(st.booleans()):
            row = draw(st.permutations(row))
        rows.append(list(row))
    return np.array(rows, dtype=np.int64).reshape(B, L)


# --- id checks -------------------------------------------------------------------------


def test_check_ids_rejects_negative_id():
    with pytest.raises(ValueError, match=r"field 'genre' contains id -1.*0 to 4"):
        check_ids(np.array([2, -1]), 5, "field 'genre'")


def test_check_ids_rejects_too_large_id():
    with pytest.raises(ValueError, match=r"field 'genre' contains id 5.*0 to 4"):
        check_ids(np.array([[0, 5]]), 5, "field 'genre'")


def test_check_ids_rejects_float_ids():
    with pytest.raises(TypeError, match="integer array"):
        check_ids(np.array([1.0, 2.0]), 5, "field 'genre'")


def test_embedding_negative_id_does_not_wrap():
    table = Embedding(4, 2, name="item", random_state=0)
    with pytest.raises(ValueError, match=r"Embedding 'item' contains id -1"):
        table.forward(np.array([0, -1]))
    with pytest.raises(ValueError, match=r"Embedding 'item' contains id -1"):
        table.lookup(np.array([-1]))


def test_embedding_too_large_id_raises():
    table = Embedding(4, 2, name="item", random_state=0)
    with pytest.raises(ValueError, match=r"'item' contains id 4.*0 to 3"):
        table.forward(np.array([[1, 4]]))


def test_bag_checks_field_local_ids():
    # The table has 9 rows, but the field owns only the 6 rows from offset 3 on: id 6 of
    # the field would read row 9, past the table, and id -1 would read row 2 of another
    # field. Both must raise, naming the field.
    table = Embedding(9, 2, random_state=0)
    bag = EmbeddingBag(table, offset=3, num_ids=6, name="genre")
    with pytest.raises(ValueError, match=r"field 'genre' contains id 6"):
        bag.forward(np.array([[1, 6]]))
    with pytest.raises(ValueError, match=r"field 'genre' contains id -1"):
        bag.forward(np.array([[1, -1]]))


def test_field_embedding_single_table_bad_ids_name_field():
    fields = [Field("user", "sparse", vocab_size=3), Field("genre", "multi", vocab_size=4,
                                                           max_len=2)]
    module = FieldEmbedding(fields, 2, single_table=True, random_state=0)
    good = {"user": np.array([0, 2]), "genre": np.array([[1, 3], [0, 0]])}
    module.forward(good)
    # user id 3 is a valid row of the shared table (genre's id 0) but not a valid user id.
    with pytest.raises(ValueError, match=r"field 'user' contains id 3.*0 to 2"):
        module.forward({**good, "user": np.array([3, 0])})
    with pytest.raises(ValueError, match=r"field 'user' contains id -1"):
        module.forward({**good, "user": np.array([-1, 0])})
    with pytest.raises(ValueError, match=r"field 'genre' contains id 4"):
        module.forward({**good, "genre": np.array([[4, 0], [0, 0]])})
    with pytest.raises(ValueError, match=r"field 'genre' contains id -2"):
        module.forward({**good, "genre": np.array([[1, 0], [-2, 0]])})


def test_field_embedding_rejects_bad_batches():
    fields = [Field("user", "sparse", vocab_size=3), Field("price", "dense")]
    module = FieldEmbedding(fields, 2, random_state=0)
    with pytest.raises(ValueError, match="missing field"):
        module.forward({"user": np.array([1])})
    with pytest.raises(ValueError, match="'price' must have shape"):
        module.forward({"user": np.array([1, 2]), "price": np.array([0.5])})
    with pytest.raises(ValueError, match="dense field 'price' must be a float array"):
        module.forward({"user": np.array([1]), "price": np.array([3])})
    with pytest.raises(ValueError, match="kind 'sequence'"):
        FieldEmbedding([Field("hist", "sequence", vocab_size=3, max_len=2, vocab_of="user")], 2)
    with pytest.raises(ValueError, match="pooling must be one of"):
        FieldEmbedding(fields, 2, pooling="max")


# --- Embedding ---------------------------------------------------------------------------


def test_embedding_sparse_grad_sums_repeated_ids():
    table = Embedding(5, 2, random_state=0)
    table.forward(np.array([1, 3, 1]))
    table.backward(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    rows, values = table.grads["weight"].coalesce()
    # row 1 is read twice: [1, 2] + [5, 6] = [6, 8]; row 3 once: [3, 4]
    np.testing.assert_array_equal(rows, [1, 3])
    np.testing.assert_array_equal(values, [[6.0, 8.0], [3.0, 4.0]])


def test_sparse_grad_coalesce_across_blocks():
    grad = SparseGrad(6, 2)
    grad.add(np.array([4, 0, 4]), np.array([[1.0, 1.0], [2.0, 0.0], [0.5, -1.0]]))
    grad.add(np.array([0, 2]), np.array([[10.0, 20.0], [3.0, 3.0]]))
    rows, values = grad.coalesce()
    # row 0: [2, 0] + [10, 20] = [12, 20]; row 2: [3, 3]; row 4: [1, 1] + [0.5, -1] = [1.5, 0]
    np.testing.assert_array_equal(rows, [0, 2, 4])
    np.testing.assert_array_equal(values, [[12.0, 20.0], [3.0, 3.0], [1.5, 0.0]])
    assert grad.to_dense().shape == (6, 2)


def test_embedding_lookup_and_add_grad_accumulate():
    table = Embedding(4, 2, random_state=0)
    first = table.lookup(np.array([2]))
    second = table.lookup(np.array([[2, 3]]))
    np.testing.assert_array_equal(first[0], table.params["weight"][2])
    np.testing.assert_array_equal(second[0, 1], table.params["weight"][3])
    table.add_grad(np.array([2]), np.array([[1.0, 1.0]]))
    table.add_grad(np.array([[2, 3]]), np.array([[[2.0, 0.0], [0.0, 4.0]]]))
    dense = table.grads["weight"].to_dense()
    np.testing.assert_array_equal(dense[2], [3.0, 1.0])
    np.testing.assert_array_equal(dense[3], [0.0, 4.0])
    with pytest.raises(ValueError, match="does not match ids"):
        table.add_grad(np.array([1, 2]), np.ones((3, 2)))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(st.integers(0, 5), min_size=1, max_size=3), min_size=1,
                max_size=4).filter(lambda rows: len({len(r) for r in rows}) == 1),
       st.integers(1, 3), st.integers(0, 1000))
def test_embedding_gradcheck(id_rows, K, seed):
    ids = np.array(id_rows)
    table = Embedding(6, K, init_std=0.5, random_state=seed)
    result = check_gradients(table, [ids], random_state=seed)
    assert result.passed(TOLERANCE), result


def test_embedding_float32_matches_float64():
    ids = np.array([[0, 3], [3, 5]])
    table64 = Embedding(6, 3, random_state=5)
    table32 = Embedding(6, 3, random_state=5, dtype=np.float32)
    out64, out32 = table64.forward(ids), table32.forward(ids)
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, out64, rtol=1e-6)
    table32.backward(np.ones((2, 2, 3), dtype=np.float32))
    assert table32.grads["weight"].to_dense().dtype == np.float32


# --- EmbeddingBag ------------------------------------------------------------------------


def small_table():
    table = Embedding(4, 2, random_state=0)
    # rows: 0 -> padding row (never read), 1 -> [1, 2], 2 -> [10, 20], 3 -> [100, 200]
    table.params["weight"][:] = [[7.0, 7.0], [1.0, 2.0], [10.0, 20.0], [100.0, 200.0]]
    return table


def test_bag_sum_and_mean_by_hand():
    ids = np.array([[1, 2, 0], [3, 3, 0], [0, 0, 0]])
    bag_sum = EmbeddingBag(small_table(), mode="sum")
    # row 0: [1, 2] + [10, 20] = [11, 22]; row 1: 2 * [100, 200]; row 2: empty -> 0
    np.testing.assert_array_equal(bag_sum.forward(ids), [[11, 22], [200, 400], [0, 0]])
    bag_mean = EmbeddingBag(small_table(), mode="mean")
    # row 0: [11, 22] / 2 real ids; row 1: [200, 400] / 2; row 2: empty -> 0, not NaN
    np.testing.assert_array_equal(bag_mean.forward(ids), [[5.5, 11], [100, 200], [0, 0]])


def test_bag_weights_by_hand():
    ids = np.array([[1, 2, 0]])
    weights = np.array([[0.5, 2.0, 9.0]])      # the 9 sits on padding and must be ignored
    bag = EmbeddingBag(small_table(), mode="sum")
    # 0.5 * [1, 2] + 2 * [10, 20] = [20.5, 41]
    np.testing.assert_array_equal(bag.forward(ids, weights), [[20.5, 41.0]])
    d_weights = bag.backward(np.array([[1.0, -1.0]]))
    # <[1, -1], [1, 2]> = -1; <[1, -1], [10, 20]> = -10; padding -> 0
    np.testing.assert_array_equal(d_weights, [[-1.0, -10.0, 0.0]])
    rows, values = bag.table.grads["weight"].coalesce()
    np.testing.assert_array_equal(rows, [1, 2])
    np.testing.assert_array_equal(values, [[0.5, -0.5], [2.0, -2.0]])


def test_bag_mean_with_weights_divides_by_count():
    ids = np.array([[1, 2, 0]])
    weights = np.array([[0.5, 2.0, 1.0]])
    bag = EmbeddingBag(small_table(), mode="mean")
    # (0.5 * [1, 2] + 2 * [10, 20]) / 2 real ids = [10.25, 20.5]
    np.testing.assert_array_equal(bag.forward(ids, weights), [[10.25, 20.5]])


def test_bag_padding_gets_no_gradient():
    ids = np.array([[0, 2, 0], [0, 0, 0]])
    bag = EmbeddingBag(small_table(), mode="mean")
    bag.forward(ids)
    bag.backward(np.ones((2, 2)))
    rows, values = bag.table.grads["weight"].coalesce()
    np.testing.assert_array_equal(rows, [2])
    np.testing.assert_array_equal(values, [[1.0, 1.0]])


def test_bag_all_padding_batch_has_empty_gradient():
    bag = EmbeddingBag(small_table(), mode="sum")
    out = bag.forward(np.zeros((2, 3), dtype=np.int64))
    np.testing.assert_array_equal(out, np.zeros((2, 2)))
    bag.backward(np.ones((2, 2)))
    rows, values = bag.table.grads["weight"].coalesce()
    assert rows.shape == (0,)
    assert values.shape == (0, 2)


def test_bag_padding_detected_before_offset():
    # Field rows start at 3: field id 0 is table row 3 (padding), field id 1 is row 4.
    table = Embedding(6, 2, random_state=0)
    bag = EmbeddingBag(table, mode="sum", offset=3, num_ids=3)
    out = bag.forward(np.array([[0, 1], [0, 0]]))
    np.testing.assert_array_equal(out[0], table.params["weight"][4])
    np.testing.assert_array_equal(out[1], [0.0, 0.0])
    bag.backward(np.ones((2, 2)))
    rows, _ = table.grads["weight"].coalesce()
    np.testing.assert_array_equal(rows, [4])


def test_bag_rejects_bad_arguments():
    table = small_table()
    with pytest.raises(ValueError, match="mode must be one of"):
        EmbeddingBag(table, mode="max")
    with pytest.raises(ValueError, match="offset must be"):
        EmbeddingBag(table, offset=4)
    with pytest.raises(ValueError, match="needs 5 table rows"):
        EmbeddingBag(table, offset=1, num_ids=4)
    bag = EmbeddingBag(table)
    with pytest.raises(ValueError, match=r"shape \(B, L\)"):
        bag.forward(np.array([1, 2]))
    with pytest.raises(ValueError, match="weights of"):
        bag.forward(np.array([[1, 2]]), np.ones((1, 3)))


@settings(max_examples=30, deadline=None)
@given(padded_lists(), st.sampled_from(["sum", "mean"]), st.booleans(),
       st.integers(0, 2), st.integers(1, 3), st.integers(0, 1000))
def test_bag_gradcheck(ids, mode, weighted, offset, K, seed):
    table = Embedding(6 + offset, K, init_std=0.5, random_state=seed)
    bag = EmbeddingBag(table, mode=mode, offset=offset, num_ids=6)
    inputs = [ids]
    if weighted:
        inputs.append(np.random.default_rng(seed).normal(size=ids.shape))
    result = check_gradients(bag, inputs, random_state=seed)
    assert result.passed(TOLERANCE), result
    # Empty lists give exact zeros, never NaN.
    out = bag.forward(*inputs)
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out[(ids == 0).all(axis=1)], 0.0)


@settings(max_examples=15, deadline=None)
@given(padded_lists(), st.sampled_from(["sum", "mean"]), st.integers(0, 1000))
def test_bag_float32_matches_float64(ids, mode, seed):
    weights = np.random.default_rng(seed).normal(size=ids.shape)
    bag64 = EmbeddingBag(Embedding(6, 3, init_std=0.5, random_state=seed), mode=mode)
    bag32 = EmbeddingBag(Embedding(6, 3, init_std=0.5, random_state=seed,
                                   dtype=np.float32), mode=mode)
    out64, out32 = bag64.forward(ids, weights), bag32.forward(ids, weights)
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, out64, rtol=1e-4, atol=1e-5)
    d_weights = bag32.backward(np.ones(out32.shape, dtype=np.float32))
    assert d_weights.dtype == np.float32


# --- FieldEmbedding ---------------------------------------------------------------------


FIELDS = [
    Field("user", "sparse", vocab_size=4),
    Field("genre", "multi", vocab_size=5, max_len=3),
    Field("price", "dense"),
    Field("city", "sparse", vocab_size=3),
]


@st.composite
def field_batches(draw):
    ids = draw(padded_lists(max_batch=4, max_width=3, vocab=5))
    B = ids.shape[0]
    users = draw(st.lists(st.integers(0, 3), min_size=B, max_size=B))
    cities = draw(st.lists(st.integers(0, 2), min_size=B, max_size=B))
    seed = draw(st.integers(0, 1000))
    rng = np.random.default_rng(seed)
    return {"user": np.array(users), "genre": ids, "price": rng.normal(size=B),
            "city": np.array(cities)}


def test_field_embedding_layout_single_table():
    module = FieldEmbedding(FIELDS, 2, single_table=True, random_state=0)
    # rows: user 0-3, genre 4-8, price 9, city 10-12
    assert module.offsets == {"user": 0, "genre": 4, "price": 9, "city": 10}
    assert module.table.num_embeddings == 13
    table, offset = module.table_rows("city")
    assert table is module.table
    assert offset == 10
    with pytest.raises(ValueError, match="no field 'age'"):
        module.table_rows("age")
    names = [name for name, _, _ in module.parameters()]
    assert names == ["table.weight"]


def test_field_embedding_forward_by_hand():
    module = FieldEmbedding(FIELDS, 2, single_table=False, random_state=0)
    module.tables["user"].params["weight"][:] = [[0, 0], [1, 1], [2, 2], [3, 3]]
    module.tables["genre"].params["weight"][:] = [[9, 9], [1, 0], [0, 1], [5, 5], [2, 2]]
    module.tables["price"].params["weight"][:] = [[0.5, -1.0]]
    module.tables["city"].params["weight"][:] = [[4, 4], [6, 6], [8, 8]]
    batch = {"user": np.array([3, 0]), "genre": np.array([[1, 2, 0], [0, 0, 0]]),
             "price": np.array([2.0, -4.0]), "city": np.array([2, 1])}
    out = module.forward(batch)
    assert out.shape == (2, 4, 2)
    np.testing.assert_array_equal(out[:, 0], [[3, 3], [0, 0]])        # user rows 3 and 0
    np.testing.assert_array_equal(out[:, 1], [[1, 1], [0, 0]])        # [1,0]+[0,1]; empty
    np.testing.assert_array_equal(out[:, 2], [[1, -2], [-2, 4]])      # 2 * v, -4 * v
    np.testing.assert_array_equal(out[:, 3], [[8, 8], [6, 6]])        # city rows 2 and 1
    grads = module.backward(np.ones((2, 4, 2)))
    # d price[b] = <dout[b, 2], v> = 0.5 - 1.0
    np.testing.assert_array_equal(grads["price"], [-0.5, -0.5])
    assert set(grads) == {"price"}
    # d v = sum_b dout[b, 2] * price[b] = [1, 1] * 2 + [1, 1] * -4
    np.testing.assert_array_equal(module.tables["price"].grads["weight"].to_dense(), [[-2, -2]])


def test_field_embedding_single_and_per_field_agree():
    single = FieldEmbedding(FIELDS, 3, single_table=True, init_std=0.5, random_state=1)
    per_field = FieldEmbedding(FIELDS, 3, single_table=False, random_state=2)
    for field in FIELDS:
        table, offset = single.table_rows(field.name)
        rows = per_field.tables[field.name].num_embeddings
        per_field.tables[field.name].params["weight"][:] = table.params["weight"][
            offset:offset + rows]
    batch = {"user": np.array([1, 1, 0]), "genre": np.array([[2, 2, 0], [0, 0, 0], [4, 1, 3]]),
             "price": np.array([0.3, -1.0, 2.0]), "city": np.array([0, 2, 2])}
    np.testing.assert_array_equal(single.forward(batch), per_field.forward(batch))
    dout = np.random.default_rng(0).normal(size=(3, 4, 3))
    grads_single = single.backward(dout)
    grads_per_field = per_field.backward(dout)
    np.testing.assert_allclose(grads_single["price"], grads_per_field["price"], rtol=1e-12)
    dense_single = single.table.grads["weight"].to_dense()
    for field in FIELDS:
        _, offset = single.table_rows(field.name)
        expected = per_field.tables[field.name].grads["weight"].to_dense()
        np.testing.assert_allclose(dense_single[offset:offset + len(expected)], expected,
                                   rtol=1e-12, atol=1e-15)


def test_field_embedding_multi_padding_row_gets_no_gradient():
    module = FieldEmbedding(FIELDS, 2, single_table=True, random_state=0)
    batch = {"user": np.array([0, 1]), "genre": np.array([[0, 3, 0], [0, 0, 0]]),
             "price": np.array([1.0, 1.0]), "city": np.array([0, 0])}
    module.forward(batch)
    module.backward(np.ones((2, 4, 2)))
    rows, _ = module.table.grads["weight"].coalesce()
    # genre's id 0 is table row 4 and must be absent; user id 0 (row 0) is a real lookup.
    assert 4 not in rows
    np.testing.assert_array_equal(rows, [0, 1, 4 + 3, 9, 10])


@settings(max_examples=25, deadline=None)
@given(field_batches(), st.booleans(), st.sampled_from(["sum", "mean"]), st.integers(1, 3))
def test_field_embedding_gradcheck(batch, single_table, pooling, K):
    module = FieldEmbedding(FIELDS, K, single_table=single_table, pooling=pooling,
                            init_std=0.5, random_state=3)
    result = check_gradients(module, [batch], differentiable=["price"], random_state=4)
    assert result.passed(TOLERANCE), result


@settings(max_examples=15, deadline=None)
@given(field_batches(), st.booleans(), st.sampled_from(["sum", "mean"]))
def test_field_embedding_weights_gradcheck(batch, single_table, pooling):
    module = FieldEmbedding(FIELDS, 2, single_table=single_table, pooling=pooling,
                            init_std=0.5, random_state=5)
    weights = np.random.default_rng(6).normal(size=batch["genre"].shape)

    def forward(genre_weights, price):
        return module.forward({**batch, "price": price}, {"genre": genre_weights})

    def backward(dout):
        grads = module.backward(dout)
        return grads["genre"], grads["price"]

    result = check_gradients(module, [weights, batch["price"].copy()], forward=forward,
                             backward=backward, random_state=7)
    assert result.passed(TOLERANCE), result


def test_field_embedding_weights_for_unknown_field_raise():
    module = FieldEmbedding(FIELDS, 2, random_state=0)
    batch = {"user": np.array([0]), "genre": np.array([[1, 0, 0]]),
             "price": np.array([1.0]), "city": np.array([0])}
    with pytest.raises(ValueError, match=r"weights given for \['user'\]"):
        module.forward(batch, {"user": np.ones((1, 1))})


@settings(max_examples=10, deadline=None)
@given(field_batches(), st.booleans())
def test_field_embedding_float32_matches_float64(batch, single_table):
    module64 = FieldEmbedding(FIELDS, 3, single_table=single_table, init_std=0.5,
                              random_state=8)
    module32 = FieldEmbedding(FIELDS, 3, single_table=single_table, init_std=0.5,
                              random_state=8, dtype=np.float32)
    out64, out32 = module64.forward(batch), module32.forward(batch)
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, out64, rtol=1e-4, atol=1e-5)
    grads = module32.backward(np.ones(out32.shape, dtype=np.float32))
    assert grads["price"].dtype == np.float32
