"""Tests of the attention models AFM, DIN and DINBase: gradients, hand-worked values, inputs."""

import json

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from minirec.data.schema import Field, Schema
from minirec.gradcheck import check_gradients
from minirec.models.afm import AFM
from minirec.models.base import get_model_class
from minirec.models.cases_attention import (gradcheck_cases, randomize, tiny_behaviour_batch,
                                            tiny_behaviour_schema, tiny_batch,
                                            tiny_schema)
from minirec.models.din import DIN, DINBase
from minirec.nn.base import SparseGrad
from minirec.nn.dice import Dice
from minirec.optim import MiniBatchAwareL2

TOLERANCE = 1e-6
CASES = gradcheck_cases()


# --------------------------------------------------------------------------------------
# Gradient checks
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, model, inputs, kwargs", CASES, ids=[case[0] for case in CASES])
def test_gradcheck_cases(name, model, inputs, kwargs):
    result = check_gradients(model, inputs, name=name, **kwargs)
    assert result.passed(TOLERANCE), f"{name}: {result.max_error:.2e} at {result.worst}"


def test_gradcheck_cases_cover_every_model():
    names = [case[0] for case in CASES]
    for prefix in ("AFM", "DIN(dice, paper", "DIN(dice, softmax", "DIN(prelu, paper",
                   "DIN(prelu, softmax", "DINBase(dice", "DINBase(prelu"):
        assert any(name.startswith(prefix) for name in names), prefix


@st.composite
def behaviour_problems(draw):
    """A random tiny DIN problem: schema, batch with padding, repeats and empty histories."""
    B = draw(st.integers(1, 4))
    T = draw(st.integers(1, 4))
    n_items = draw(st.integers(3, 6))
    n_categories = draw(st.integers(3, 4))
    with_category = draw(st.booleans())
    fields = [
        Field("user_id", "sparse", vocab_size=4),
        Field("item_id", "sparse", vocab_size=n_items),
        Field("price", "dense"),
        Field("hist_item_id", "sequence", max_len=T, vocab_of="item_id", length="hist_length"),
    ]
    if with_category:
        fields.insert(2, Field("category", "sparse", vocab_size=n_categories))
        fields.append(Field("hist_category", "sequence", max_len=T, vocab_of="category",
                            length="hist_length"))
    schema = Schema(fields)

    def ids(high, shape):
        return np.array(draw(st.lists(st.integers(2, high - 1), min_size=int(np.prod(shape)),
                                      max_size=int(np.prod(shape))))).reshape(shape)

    lengths = np.array(draw(st.lists(st.integers(0, T), min_size=B, max_size=B)))
    valid = np.arange(T)[None, :] < lengths[:, None]
    batch = {
        "user_id": ids(4, (B,)),
        "item_id": ids(n_items, (B,)),
        "price": np.array(draw(st.lists(st.sampled_from([-1.5, -0.5, 0.25, 1.0, 2.0]),
                                        min_size=B, max_size=B))),
        "hist_item_id": np.where(valid, ids(n_items, (B, T)), 0),
        "hist_length": lengths,
    }
    if with_category:
        batch["category"] = ids(n_categories, (B,))
        batch["hist_category"] = np.where(valid, ids(n_categories, (B, T)), 0)
    return schema, batch


def smallest_dice_spread(model, batch):
    """Return the smallest batch standard deviation of any feature entering a Dice layer.

    Dice layers that see a single row are left out: there ``s - mean`` is exactly 0
    whatever the parameters, so the normalisation is smooth.
    """
    spreads = []
    dice_layers = [module for module in model.modules() if isinstance(module, Dice)]
    for layer in dice_layers:
        def recording_forward(s, layer=layer, forward=layer.forward):
            rows = s.reshape(-1, s.shape[-1])
            if rows.shape[0] > 1:
                spreads.append(rows.std(axis=0).min())
            return forward(s)
        layer.forward = recording_forward
    model.forward(batch)
    for layer in dice_layers:
        del layer.forward
    return min(spreads, default=np.inf)


@settings(max_examples=30, deadline=None)
@given(problem=behaviour_problems(), kind=st.sampled_from(["paper", "softmax", "base"]),
       activation=st.sampled_from(["dice", "prelu"]), K=st.integers(1, 2),
       seed=st.integers(0, 2 ** 16))
def test_gradcheck_din_drawn_batches(problem, kind, activation, K, seed):
    schema, batch = problem
    if kind == "base":
        model = DINBase(schema, embedding_dim=K, hidden=(4, 3), activation=activation,
                        random_state=seed)
    else:
        model = DIN(schema, embedding_dim=K, hidden=(4, 3), attention_hidden=(3,),
                    activation=activation, attention_normalize=kind == "softmax",
                    random_state=seed)
    randomize(model, random_state=seed)
    # Dice normalises by the batch standard deviation, so a feature spread over a small
    # range makes its third derivative large (of order 1 / std^3) and central differences
    # with step 1e-5 inaccurate. Rows that are identical except for one value, and two
    # rows whose difference is tiny, are such cases; they say nothing about the backward pass.
    assume(activation != "dice" or smallest_dice_spread(model, batch) > 0.1)
    result = check_gradients(model, [batch], differentiable=["price"], max_entries=25)
    assert result.passed(TOLERANCE), f"{result.max_error:.2e} at {result.worst}"


@settings(max_examples=25, deadline=None)
@given(B=st.integers(1, 4), F=st.integers(1, 4), K=st.integers(1, 3), A=st.integers(1, 3),
       with_dense=st.booleans(), seed=st.integers(0, 2 ** 16), data=st.data())
def test_gradcheck_afm_drawn_batches(B, F, K, A, with_dense, seed, data):
    fields = [Field(f"f{index}", "sparse", vocab_size=4) for index in range(F)]
    if with_dense:
        fields.append(Field("price", "dense"))
    schema = Schema(fields)
    # Ids from 0 to 3 with few choices, so repeated ids within and across rows are common.
    batch = {f"f{index}": np.array(data.draw(st.lists(st.integers(0, 3), min_size=B,
                                                       max_size=B)))
             for index in range(F)}
    if with_dense:
        batch["price"] = np.array(data.draw(st.lists(st.floats(-2, 2), min_size=B,
                                                     max_size=B)))
    model = randomize(AFM(schema, embedding_dim=K, attention_dim=A, random_state=seed),
                      random_state=seed)
    differentiable = ["price"] if with_dense else []
    result = check_gradients(model, [batch], differentiable=differentiable, max_entries=25)
    assert result.passed(TOLERANCE), f"{result.max_error:.2e} at {result.worst}"


# --------------------------------------------------------------------------------------
# Hand-worked values
# --------------------------------------------------------------------------------------

def test_afm_hand_worked_logit():
    schema = Schema([Field(name, "sparse", vocab_size=3) for name in ("a", "b", "c")])
    model = AFM(schema, embedding_dim=2, attention_dim=1, random_state=0)
    vectors = {"a": [1.0, 1.0], "b": [2.0, 1.0], "c": [-1.0, 3.0]}
    weights = {"a": 0.1, "b": -0.2, "c": 0.3}
    for name in vectors:
        table, offset = model.embedding.table_rows(name)
        table.params["weight"][offset + 2] = vectors[name]
        table, offset = model.first_order.table_rows(name)
        table.params["weight"][offset + 2] = weights[name]
    model.params["bias"][...] = 0.5
    attention = model.attention
    attention.params["W"][...] = [[1.0], [0.0]]     # the hidden unit reads u_ij[0]
    attention.params["b"][...] = 0.0
    attention.params["h"][...] = [1.0]
    attention.params["p"][...] = [1.0, 0.5]
    batch = {"a": np.array([2]), "b": np.array([2]), "c": np.array([2])}

    logits = model.forward(batch)

    # Pair products: ab = (2, 1), ac = (-1, 3), bc = (-2, 3).
    # Scores h * ReLU(u_ij[0]): ab -> 2, ac -> ReLU(-1) = 0, bc -> ReLU(-2) = 0.
    # Softmax: e^2 = 7.38905610, total 7.38905610 + 1 + 1 = 9.38905610,
    #   a_ab = 7.38905610 / 9.38905610 = 0.78698604, a_ac = a_bc = 1 / 9.38905610 = 0.10650698
    np.testing.assert_allclose(model.attention_weights(),
                               [[0.78698604, 0.10650698, 0.10650698]], atol=1e-8)
    assert model.pair_names == ["a x b", "a x c", "b x c"]
    # Pooled: 0.78698604 (2, 1) + 0.10650698 ((-1, 3) + (-2, 3))
    #   = (1.57397208 - 0.31952094, 0.78698604 + 0.63904187) = (1.25445115, 1.42602792)
    # p . pooled = 1.25445115 + 0.5 * 1.42602792 = 1.96746511
    # logit = bias 0.5 + first order (0.1 - 0.2 + 0.3) + 1.96746511 = 2.66746511
    np.testing.assert_allclose(logits, [2.66746511], atol=1e-8)


def hand_worked_din(model_class, **kwargs):
    """DIN or DINBase with K = 1 and one-unit PReLU layers set by hand.

    Item vectors: id 2 -> 1, id 3 -> 2, id 4 -> -1. Activation unit (DIN): the hidden unit
    reads only q * k, so ``w = PReLU(q k)`` with slope 0.25 below 0. MLP: the hidden unit
    sums its two inputs (candidate e, pooled), ``h = PReLU(e + pooled)``, and the logit is
    ``h - 1``.
    """
    schema = Schema([
        Field("item_id", "sparse", vocab_size=5),
        Field("hist_item_id", "sequence", max_len=3, vocab_of="item_id", length="hist_length"),
    ])
    extra = {"attention_hidden": (1,)} if model_class is DIN else {}
    model = model_class(schema, embedding_dim=1, hidden=(1,), activation="prelu",
                        random_state=0, **extra, **kwargs)
    table, _ = model.embedding.table_rows("item_id")
    table.params["weight"][:, 0] = [0.0, 0.0, 1.0, 2.0, -1.0]
    if model_class is DIN:
        first, prelu, last = model.attention.unit.layers
        first.params["W"][:, 0] = [0.0, 0.0, 0.0, 1.0]        # [q, k, q - k, q * k]
        first.params["b"][...] = 0.0
        prelu.params["alpha"][...] = 0.25
        last.params["W"][...] = 1.0
        last.params["b"][...] = 0.0
    first, prelu, last = model.mlp.layers
    first.params["W"][...] = 1.0
    first.params["b"][...] = 0.0
    prelu.params["alpha"][...] = 0.25
    last.params["W"][...] = 1.0
    last.params["b"][...] = -1.0
    batch = {
        "item_id": np.array([3, 4, 2]),
        "hist_item_id": np.array([[2, 4, 0], [3, 0, 0], [0, 0, 0]]),
        "hist_length": np.array([2, 1, 0]),
    }
    return model, batch


def test_din_hand_worked_paper_weights():
    model, batch = hand_worked_din(DIN)
    logits = model.forward(batch)
    # Row 0: q = 2, keys (1, -1). q k = (2, -2), w = PReLU = (2, -0.5).
    #   pooled = 2 * 1 + (-0.5) * (-1) = 2.5; h = PReLU(2 + 2.5) = 4.5; logit = 3.5
    # Row 1: q = -1, key 2. q k = -2, w = -0.5; pooled = -0.5 * 2 = -1;
    #   h = PReLU(-1 - 1) = 0.25 * -2 = -0.5; logit = -1.5
    # Row 2: q = 1, empty history: pooled = 0; h = PReLU(1) = 1; logit = 0
    np.testing.assert_allclose(model.attention_weights(),
                               [[2.0, -0.5, 0.0], [-0.5, 0.0, 0.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(logits, [3.5, -1.5, 0.0], atol=1e-12)


def test_din_hand_worked_softmax_weights():
    model, batch = hand_worked_din(DIN, attention_normalize=True)
    logits = model.forward(batch)
    # Row 0: scores (2, -0.5), w_0 = 1 / (1 + e^-2.5) = 1 / 1.08208500 = 0.92414182,
    #   w_1 = 0.07585818; pooled = 0.92414182 - 0.07585818 = 0.84828364;
    #   h = 2 + 0.84828364 = 2.84828364; logit = 1.84828364
    # Row 1: one behaviour, w = 1; pooled = 2; h = PReLU(-1 + 2) = 1; logit = 0
    # Row 2: empty history, w all 0; logit = 0 as in the paper mode
    np.testing.assert_allclose(model.attention_weights(),
                               [[0.92414182, 0.07585818, 0.0], [1.0, 0.0, 0.0],
                                [0.0, 0.0, 0.0]], atol=1e-8)
    np.testing.assert_allclose(logits, [1.84828364, 0.0, 0.0], atol=1e-8)


def test_din_base_hand_worked_sum_pooling():
    model, batch = hand_worked_din(DINBase)
    logits = model.forward(batch)
    # Row 0: pooled = 1 + (-1) = 0; h = 2; logit = 1
    # Row 1: pooled = 2; h = PReLU(-1 + 2) = 1; logit = 0
    # Row 2: pooled = 0; h = 1; logit = 0
    np.testing.assert_allclose(logits, [1.0, 0.0, 0.0], atol=1e-12)


def test_din_hand_worked_gradient_of_shared_row():
    model, batch = hand_worked_din(DIN)
    model.forward(batch)
    model.backward(np.array([1.0, 0.0, 0.0]))
    table, _ = model.embedding.table_rows("item_id")
    # Row 0 alone (dlogit 1), h = 4.5 > 0 so dh/d(e + pooled) = 1.
    # Candidate item 3 (e = q = 2): d/de directly = 1; through pooled = w_0 k_0 + w_1 k_1 with
    #   w_t = PReLU(q k_t): d pooled / dq = PReLU'(2) k_0^2 + PReLU'(-2) k_1^2 = 1 + 0.25 = 1.25.
    #   Row 3 of the table: 1 + 1.25 = 2.25.
    # Behaviour item 2 (k_0 = 1): d pooled / dk_0 = w_0 + k_0 PReLU'(2) q = 2 + 2 = 4.
    # Behaviour item 4 (k_1 = -1): d pooled / dk_1 = w_1 + k_1 PReLU'(-2) q = -0.5 - 0.5 = -1.
    expected = np.array([0.0, 0.0, 4.0, 2.25, -1.0])
    np.testing.assert_allclose(table.grads["weight"].to_dense()[:, 0], expected, atol=1e-12)


# --------------------------------------------------------------------------------------
# Shared tables and padding
# --------------------------------------------------------------------------------------

def capture_gradients(model):
    """Wrap the pooling and embedding backward passes to record what they receive and return."""
    seen = {}
    pool_backward = model._pool_backward
    embedding_backward = model.embedding.backward

    def recording_pool_backward(d_pooled, lengths, flat_index):
        d_query, d_key_rows = pool_backward(d_pooled, lengths, flat_index)
        seen["d_key_rows"] = d_key_rows.copy()
        return d_query, d_key_rows

    def recording_embedding_backward(d_E):
        seen["d_E"] = d_E.copy()
        return embedding_backward(d_E)

    model._pool_backward = recording_pool_backward
    model.embedding.backward = recording_embedding_backward
    return seen


@pytest.mark.parametrize("model_class, kwargs", [
    (DIN, {}), (DIN, {"attention_normalize": True}), (DINBase, {}),
])
def test_shared_table_gradient_sums_candidate_and_behaviours(model_class, kwargs):
    schema = tiny_behaviour_schema()
    batch = tiny_behaviour_batch()
    model = model_class(schema, embedding_dim=2, hidden=(5,), activation="prelu",
                        random_state=0, **kwargs)
    randomize(model, random_state=1)
    seen = capture_gradients(model)
    model.forward(batch)
    model.backward(np.array([0.7, -1.1, 0.4]))

    K = 2
    item_field = [f.name for f in model.fields].index("item_id")
    valid = np.arange(4)[None, :] < batch["hist_length"][:, None]
    table, _ = model.embedding.table_rows("item_id")
    dense_grad = table.grads["weight"].to_dense()
    # Item 3 is row 0's candidate and a behaviour of rows 0 (twice) and 2.
    from_candidate = seen["d_E"][batch["item_id"] == 3, item_field].sum(axis=0)
    # the key rows follow the valid positions in row-major order, as boolean indexing does
    from_behaviours = seen["d_key_rows"][batch["hist_item_id"][valid] == 3, :K].sum(axis=0)
    assert np.all(np.abs(from_candidate) > 0)
    assert np.all(np.abs(from_behaviours) > 0)
    np.testing.assert_allclose(dense_grad[3], from_candidate + from_behaviours, rtol=1e-12)


@pytest.mark.parametrize("model_class, kwargs", [
    (DIN, {}), (DIN, {"attention_normalize": True}), (DINBase, {}),
])
def test_padding_rows_get_exactly_zero_gradient(model_class, kwargs):
    schema = tiny_behaviour_schema()
    batch = tiny_behaviour_batch()
    # Item 5 and category 3 now appear only after the lengths (ids that the schema treats
    # as padding), and id 0 fills the other padded positions.
    batch["item_id"] = np.array([3, 2, 4])
    batch["category"] = np.array([2, 2, 2])
    batch["hist_item_id"] = np.array([[3, 2, 5, 5], [5, 0, 0, 0], [4, 3, 2, 2]])
    batch["hist_category"] = np.array([[2, 2, 3, 3], [3, 0, 0, 0], [2, 2, 2, 2]])
    batch["hist_length"] = np.array([2, 0, 4])
    model = model_class(schema, embedding_dim=2, hidden=(5,), random_state=0, **kwargs)
    randomize(model, random_state=2)
    model.forward(batch)
    model.backward(np.array([1.0, -2.0, 0.5]))

    items = model.embedding.table_rows("item_id")[0].grads["weight"].to_dense()
    categories = model.embedding.table_rows("category")[0].grads["weight"].to_dense()
    assert np.all(items[0] == 0.0)
    assert np.all(items[5] == 0.0)
    assert np.all(categories[0] == 0.0)
    assert np.all(categories[3] == 0.0)
    assert np.all(items[[2, 3, 4]] != 0.0)


@pytest.mark.parametrize("model_class, kwargs", [
    (DIN, {}), (DIN, {"attention_normalize": True}), (DINBase, {}),
])
def test_ids_after_length_do_not_change_output(model_class, kwargs):
    schema = tiny_behaviour_schema()
    batch = tiny_behaviour_batch()
    model = randomize(model_class(schema, embedding_dim=2, hidden=(5,), random_state=0,
                                  **kwargs), random_state=3)
    model.eval()
    before = model.forward(batch)
    batch["hist_item_id"] = np.where(batch["hist_item_id"] == 0, 4, batch["hist_item_id"])
    batch["hist_category"] = np.where(batch["hist_category"] == 0, 3, batch["hist_category"])
    after = model.forward(batch)
    np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("model_class, kwargs", [
    (DIN, {}), (DIN, {"attention_normalize": True}), (DINBase, {}),
])
def test_all_histories_empty(model_class, kwargs):
    schema = tiny_behaviour_schema()
    batch = tiny_behaviour_batch()
    batch["hist_item_id"][...] = 0
    batch["hist_category"][...] = 0
    batch["hist_length"][...] = 0
    model = model_class(schema, embedding_dim=2, hidden=(5,), random_state=0, **kwargs)
    logits = model.forward(batch)
    model.backward(np.ones(3))
    assert logits.shape == (3,)
    assert np.all(np.isfinite(logits))
    if model_class is DIN:
        np.testing.assert_array_equal(model.attention_weights(), np.zeros((3, 4)))


# --------------------------------------------------------------------------------------
# Shapes, dtypes, configuration
# --------------------------------------------------------------------------------------

def test_afm_attention_weights_shape_and_names():
    schema = tiny_schema()
    model = AFM(schema, embedding_dim=3, attention_dim=2, random_state=0)
    with pytest.raises(ValueError, match="forward pass first"):
        model.attention_weights()
    model.forward(tiny_batch())
    weights = model.attention_weights()
    assert weights.shape == (3, 6)
    np.testing.assert_allclose(weights.sum(axis=1), np.ones(3))
    assert model.pair_names == ["user x item", "user x tags", "user x price", "item x tags",
                                "item x price", "tags x price"]


def test_din_attention_weights_shape_and_padding():
    model = DIN(tiny_behaviour_schema(), embedding_dim=2, hidden=(5,), random_state=0,
                attention_normalize=True)
    with pytest.raises(ValueError, match="forward pass first"):
        model.attention_weights()
    batch = tiny_behaviour_batch()
    model.forward(batch)
    weights = model.attention_weights()
    assert weights.shape == (3, 4)
    np.testing.assert_allclose(weights.sum(axis=1), [1.0, 0.0, 1.0])
    assert weights[0, 3] == 0.0
    assert np.all(weights[1] == 0.0)


def test_din_base_has_no_attention():
    model = DINBase(tiny_behaviour_schema(), embedding_dim=2, hidden=(5,), random_state=0)
    assert not hasattr(model, "attention_weights")
    assert not any(name.startswith("attention") for name, _, _ in model.parameters())


@pytest.mark.parametrize("build, batch", [
    (lambda dtype: AFM(tiny_schema(), embedding_dim=3, dropout=0.2, random_state=0,
                       dtype=dtype), tiny_batch),
    (lambda dtype: DIN(tiny_behaviour_schema(), embedding_dim=2, hidden=(5,), random_state=0,
                       dtype=dtype), tiny_behaviour_batch),
    (lambda dtype: DINBase(tiny_behaviour_schema(), embedding_dim=2, hidden=(5,),
                           activation="prelu", random_state=0, dtype=dtype),
     tiny_behaviour_batch),
], ids=["AFM", "DIN", "DINBase"])
def test_float32_stays_float32(build, batch):
    model = build(np.float32)
    features = batch()
    features["price"] = features["price"].astype(np.float32)
    logits = model.forward(features)
    input_grads = model.backward(np.ones(3, dtype=np.float32))
    assert logits.dtype == np.float32
    assert input_grads["price"].dtype == np.float32
    for name, value, grad in model.parameters():
        assert value.dtype == np.float32, name
        dense = grad.to_dense() if isinstance(grad, SparseGrad) else grad
        assert dense.dtype == np.float32, name


@pytest.mark.parametrize("registry_name, kwargs, batch", [
    ("afm", {"embedding_dim": 3, "attention_dim": 2}, tiny_batch),
    ("din", {"embedding_dim": 2, "hidden": (5,), "attention_normalize": True},
     tiny_behaviour_batch),
    ("din-base", {"embedding_dim": 2, "hidden": (5, 3), "activation": "prelu"},
     tiny_behaviour_batch),
])
def test_config_rebuilds_same_model(registry_name, kwargs, batch):
    model_class = get_model_class(registry_name)
    schema = tiny_schema() if registry_name == "afm" else tiny_behaviour_schema()
    model = model_class(schema, random_state=0, **kwargs)
    config = json.loads(json.dumps(model.config))
    rebuilt = model_class(schema, random_state=1, **config)
    rebuilt.load_state_dict(model.state_dict())
    model.eval()
    rebuilt.eval()
    np.testing.assert_array_equal(model.forward(batch()), rebuilt.forward(batch()))


def test_din_default_sizes_follow_paper():
    model = DIN(tiny_behaviour_schema(), random_state=0)
    assert model.config["hidden"] == [200, 80]
    assert model.config["activation"] == "dice"
    assert model.config["attention_normalize"] is False
    assert model.config["attention_hidden"] == [36]


def test_afm_dropout_only_in_training():
    model = AFM(tiny_schema(), embedding_dim=3, dropout=0.5, random_state=0)
    randomize(model, random_state=4)
    batch = tiny_batch()
    model.eval()
    first, second = model.forward(batch), model.forward(batch)
    np.testing.assert_array_equal(first, second)
    model.train()
    trained = [model.forward(batch) for _ in range(3)]
    assert not all(np.array_equal(trained[0], other) for other in trained[1:])


def test_table_frequencies_count_candidates_and_valid_behaviours():
    model = DIN(tiny_behaviour_schema(), embedding_dim=2, hidden=(5,), random_state=0)
    frequencies = model.table_frequencies(tiny_behaviour_batch())
    names = model.embedding_table_names()
    # Items: candidates (3, 5, 4); valid behaviours (3, 2, 3) and (4, 3, 5, 2).
    #   id 2: 2, id 3: 1 + 2 + 1 = 4, id 4: 1 + 1 = 2, id 5: 1 + 1 = 2
    np.testing.assert_array_equal(frequencies[names["item_id"]], [0, 0, 2, 4, 2, 2])
    # Categories: candidates (2, 3, 2); behaviours (2, 3, 2) and (2, 2, 3, 3).
    #   id 2: 2 + 2 + 2 = 6, id 3: 1 + 1 + 2 = 4
    np.testing.assert_array_equal(frequencies[names["category"]], [0, 0, 6, 4])
    np.testing.assert_array_equal(frequencies[names["user_id"]], [0, 0, 2, 1])
    assert names["price"] not in frequencies


def test_mini_batch_aware_l2_runs_on_din_tables():
    model = DIN(tiny_behaviour_schema(), embedding_dim=2, hidden=(5,), random_state=0)
    batch = tiny_behaviour_batch()
    regularizer = MiniBatchAwareL2(0.5, model.table_frequencies(batch))
    model.forward(batch)
    model.backward(np.zeros(3))
    penalty = regularizer.apply(model)
    items = model.embedding.table_rows("item_id")[0]
    weight = items.params["weight"]
    # With a zero upstream gradient only the penalty remains: 0.5 * w_j / n_j per used row.
    expected = 0.5 * weight[3] / 4
    np.testing.assert_allclose(items.grads["weight"].to_dense()[3], expected, rtol=1e-12)
    assert penalty > 0


# --------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------

def din_model():
    return DIN(tiny_behaviour_schema(), embedding_dim=2, hidden=(5,), random_state=0)


def test_history_longer_than_max_len_rejected():
    batch = tiny_behaviour_batch()
    batch["hist_item_id"] = np.pad(batch["hist_item_id"], ((0, 0), (0, 1)))
    batch["hist_category"] = np.pad(batch["hist_category"], ((0, 0), (0, 1)))
    with pytest.raises(ValueError, match=r"'hist_item_id' has width 5.*max_len=4"):
        din_model().forward(batch)


def test_negative_length_rejected():
    batch = tiny_behaviour_batch()
    batch["hist_length"] = np.array([3, -1, 4])
    with pytest.raises(ValueError, match=r"'hist_length' contains length -1.*\[0, 4\]"):
        din_model().forward(batch)


def test_length_beyond_padded_width_rejected():
    batch = tiny_behaviour_batch()
    batch["hist_length"] = np.array([3, 5, 4])
    with pytest.raises(ValueError, match=r"'hist_length' contains length 5.*\[0, 4\]"):
        din_model().forward(batch)


def test_history_category_outside_table_rejected():
    batch = tiny_behaviour_batch()
    batch["hist_category"][0, 1] = 4
    with pytest.raises(ValueError, match=r"'hist_category' contains id 4.*0 to 3"):
        din_model().forward(batch)


def test_candidate_category_outside_table_rejected():
    batch = tiny_behaviour_batch()
    batch["category"] = np.array([2, -1, 2])
    with pytest.raises(ValueError, match=r"'category' contains id -1.*0 to 3"):
        din_model().forward(batch)


def test_sequences_of_different_widths_rejected():
    batch = tiny_behaviour_batch()
    batch["hist_category"] = batch["hist_category"][:, :3]
    batch["hist_length"] = np.array([3, 0, 3])
    with pytest.raises(ValueError, match=r"same padded width.*'hist_category': 3"):
        din_model().forward(batch)


def test_din_without_sequence_rejected():
    with pytest.raises(ValueError, match="needs at least one sequence field"):
        DIN(tiny_schema())


def test_din_with_two_length_keys_rejected():
    schema = Schema([
        Field("item_id", "sparse", vocab_size=5),
        Field("hist_a", "sequence", max_len=3, vocab_of="item_id", length="length_a"),
        Field("hist_b", "sequence", max_len=3, vocab_of="item_id", length="length_b"),
    ])
    with pytest.raises(ValueError, match=r"share one length key.*'length_a', 'length_b'"):
        DINBase(schema)


def test_afm_with_sequence_rejected():
    with pytest.raises(ValueError, match="AFM takes sparse, multi and dense fields"):
        AFM(tiny_behaviour_schema())


@pytest.mark.parametrize("kwargs, error, pattern", [
    ({"activation": "relu"}, ValueError, "activation must be one of dice, prelu, got 'relu'"),
    ({"hidden": ()}, ValueError, "hidden must list at least one layer width"),
    ({"hidden": (5, 0)}, ValueError, r"hidden\[1\] must be a positive integer, got 0"),
    ({"attention_hidden": ()}, ValueError, "attention_hidden must list at least one"),
    ({"attention_normalize": "yes"}, TypeError, "attention_normalize must be True or False"),
    ({"dropout": 1.0}, ValueError, r"dropout must be a probability in \[0, 1\), got 1.0"),
    ({"embedding_dim": 0}, ValueError, "embedding_dim must be a positive integer, got 0"),
])
def test_din_bad_arguments_rejected(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        DIN(tiny_behaviour_schema(), **kwargs)
