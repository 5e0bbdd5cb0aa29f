"""Tests of FM, FNN, DeepFM, Wide&Deep, Deep Crossing, NFM and MLPModel."""

import json

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from minirec.checkpoint import load_checkpoint, save_checkpoint
from minirec.data.schema import Field, Schema
from minirec.gradcheck import check_gradients
from minirec.models.cases_fm_family import gradcheck_cases, randomize, tiny_batch, tiny_schema
from minirec.models.deep_crossing import DeepCrossing
from minirec.models.deepfm import DeepFM
from minirec.models.fm import FM
from minirec.models.fnn import FNN
from minirec.models.mlp import MLPModel
from minirec.models.nfm import NFM
from minirec.models.wide_deep import WideDeep, cross_ids
from minirec.nn.base import SparseGrad
from minirec.nn.residual import ResidualUnit

TOLERANCE = 1e-6

# Small builders of every model over the tiny schema (two sparse fields, a multi field and
# a dense field), keyed by the name used in test ids.
FACTORIES = {
    "FM": lambda schema, **kw: FM(schema, embedding_dim=3, **kw),
    "FNN": lambda schema, **kw: FNN(schema, embedding_dim=2, hidden=(4, 3), **kw),
    "DeepFM": lambda schema, **kw: DeepFM(schema, embedding_dim=3, hidden=(4,), **kw),
    "WideDeep": lambda schema, **kw: WideDeep(schema, embedding_dim=2, hidden=(4,),
                                              cross_features=[("user", "item")], **kw),
    "WideDeep(hashed)": lambda schema, **kw: WideDeep(schema, embedding_dim=2, hidden=(3,),
                                                      cross_features=[("user", "item")],
                                                      cross_buckets=5, **kw),
    "DeepCrossing": lambda schema, **kw: DeepCrossing(schema, embedding_dim=2,
                                                      residual_hidden=(4, 3), **kw),
    "NFM": lambda schema, **kw: NFM(schema, embedding_dim=3, hidden=(4,), **kw),
    "NFM(no hidden)": lambda schema, **kw: NFM(schema, embedding_dim=3, hidden=(), **kw),
    "MLPModel": lambda schema, **kw: MLPModel(schema, embedding_dim=2, hidden=(4, 3), **kw),
}


def zero_parameters(model):
    for _, value, _ in model.parameters():
        value[...] = 0.0
    return model


def set_row(field_embedding, field, row_id, values):
    """Write ``values`` into the row of ``row_id`` of ``field`` (id 0 for a dense field)."""
    table, offset = field_embedding.table_rows(field)
    table.params["weight"][offset + row_id] = values


def dense_grad(grad):
    return grad.to_dense() if isinstance(grad, SparseGrad) else np.asarray(grad)


# --------------------------------------------------------------------------------------
# Gradient checks
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", gradcheck_cases(), ids=lambda case: case[0])
def test_gradcheck_fixed_cases(case):
    name, model, inputs, kwargs = case
    result = check_gradients(model, inputs, name=name, **kwargs)
    assert result.checked > 0
    assert result.passed(TOLERANCE), f"{name}: worst {result.worst} = {result.max_error:.2e}"


@st.composite
def tiny_batches(draw):
    """Batches of 1 to 4 rows over the tiny schema, with repeated ids and empty tag lists."""
    B = draw(st.integers(1, 4))
    ids = lambda high: st.lists(st.integers(0, high), min_size=B, max_size=B)  # noqa: E731
    tags = draw(st.lists(st.lists(st.integers(0, 5), min_size=3, max_size=3),
                         min_size=B, max_size=B))
    if draw(st.booleans()):
        tags[0] = [0, 0, 0]                         # an empty list in the first row
    prices = draw(st.lists(st.floats(-2.0, 2.0, allow_nan=False), min_size=B, max_size=B))
    return {
        "user": np.array(draw(ids(3)), dtype=np.int64),
        "item": np.array(draw(ids(4)), dtype=np.int64),
        "tags": np.array(tags, dtype=np.int64),
        "price": np.array(prices, dtype=np.float64),
    }


ONE_ROW_EMPTY_TAGS = {"user": np.array([3]), "item": np.array([0]),
                      "tags": np.array([[0, 0, 0]]), "price": np.array([-0.75])}
REPEATED_IDS = {"user": np.array([2, 2, 2]), "item": np.array([4, 4, 1]),
                "tags": np.array([[5, 5, 0], [5, 0, 0], [0, 0, 0]]),
                "price": np.array([1.5, 1.5, 0.0])}


@pytest.mark.parametrize("model_name", list(FACTORIES))
@settings(max_examples=6, deadline=None)
@given(batch=tiny_batches(), seed=st.integers(0, 2**16))
@example(batch=ONE_ROW_EMPTY_TAGS, seed=1)
@example(batch=REPEATED_IDS, seed=2)
def test_gradcheck_drawn_batches(model_name, batch, seed):
    model = randomize(FACTORIES[model_name](tiny_schema(), random_state=seed),
                      random_state=seed)
    result = check_gradients(model, [batch], differentiable=["price"], max_entries=25,
                             random_state=seed, name=model_name)
    assert result.passed(TOLERANCE), f"worst {result.worst} = {result.max_error:.2e}"


@settings(max_examples=10, deadline=None)
@given(B=st.integers(1, 4), D=st.integers(1, 4), H=st.integers(1, 4),
       seed=st.integers(0, 2**16))
def test_residual_unit_gradcheck(B, D, H, seed):
    rng = np.random.default_rng(seed)
    unit = ResidualUnit(D, H, random_state=seed)
    unit.inner.params["b"][...] = rng.normal(0.0, 0.5, size=H)
    unit.outer.params["b"][...] = rng.normal(0.0, 0.5, size=D)
    result = check_gradients(unit, [rng.standard_normal((B, D))], random_state=seed)
    assert result.passed(TOLERANCE), f"worst {result.worst} = {result.max_error:.2e}"


def test_residual_unit_with_zero_layers_is_relu_of_input():
    # With W0 = W1 = 0 and b0 = b1 = 0 the residual is 0, so out = ReLU(x).
    unit = zero_parameters(ResidualUnit(3, 2, random_state=0))
    x = np.array([[1.0, -2.0, 0.5]])
    np.testing.assert_array_equal(unit.forward(x), [[1.0, 0.0, 0.5]])
    np.testing.assert_array_equal(unit.backward(np.ones((1, 3))), [[1.0, 0.0, 1.0]])


def test_gradcheck_dropout_in_training_mode():
    # A fixed generator makes the dropout masks part of one fixed function.
    model = randomize(DeepFM(tiny_schema(), embedding_dim=2, hidden=(6,), dropout=0.5,
                             random_state=3))
    result = check_gradients(model, [tiny_batch()], differentiable=["price"])
    assert result.passed(TOLERANCE), f"worst {result.worst} = {result.max_error:.2e}"


# --------------------------------------------------------------------------------------
# Hand-worked values
# --------------------------------------------------------------------------------------

HAND_SCHEMA = Schema([
    Field("user", "sparse", vocab_size=4),
    Field("item", "sparse", vocab_size=4),
    Field("price", "dense"),
])


def test_fm_hand_worked():
    schema = Schema([*HAND_SCHEMA.fields, Field("tags", "multi", vocab_size=4, max_len=2)])
    fm = zero_parameters(FM(schema, embedding_dim=2, random_state=0))
    fm.params["w0"][...] = 0.5
    for field, row_id, w, v in [("user", 2, 0.1, [1.0, 0.0]), ("user", 3, -0.2, [0.0, 1.0]),
                                ("item", 3, 0.3, [1.0, 2.0]), ("item", 2, 0.0, [2.0, -1.0]),
                                ("price", 0, 0.5, [0.5, 0.5]),
                                ("tags", 2, 0.2, [1.0, 1.0]), ("tags", 3, 0.1, [0.0, -1.0])]:
        set_row(fm.first_order, field, row_id, [w])
        set_row(fm.embedding, field, row_id, v)
    batch = {"user": np.array([2, 3]), "item": np.array([3, 2]), "price": np.array([1.0, 2.0]),
             "tags": np.array([[2, 3], [0, 0]])}
    # Row 0: user 2, item 3, price 1, tags {2, 3} (summed).
    #   first order: 0.1 + 0.3 + 0.5 * 1 + (0.2 + 0.1) = 1.2
    #   e_user = (1, 0), e_item = (1, 2), e_price = 1 * (0.5, 0.5), e_tags = (1, 0)
    #   pairs: u.i = 1, u.p = 0.5, u.t = 1, i.p = 1.5, i.t = 1, p.t = 0.5 -> 5.5
    #   logit = 0.5 + 1.2 + 5.5 = 7.2
    # Row 1: user 3, item 2, price 2, empty tag list.
    #   first order: -0.2 + 0 + 0.5 * 2 + 0 = 0.8
    #   e_user = (0, 1), e_item = (2, -1), e_price = (1, 1), e_tags = (0, 0)
    #   pairs: u.i = -1, u.p = 1, i.p = 1, the rest 0 -> 1
    #   logit = 0.5 + 0.8 + 1 = 2.3
    np.testing.assert_allclose(fm.forward(batch), [7.2, 2.3], rtol=1e-14)
    # Columns: user x item, user x price, user x tags, item x price, item x tags, price x tags
    assert fm.pair_names[:2] == ["user x item", "user x price"]
    np.testing.assert_allclose(fm.pair_interactions(batch),
                               [[1.0, 0.5, 1.0, 1.5, 1.0, 0.5],
                                [-1.0, 1.0, 0.0, 1.0, 0.0, 0.0]], atol=1e-15)


def test_fm_hand_worked_gradient_of_dense_value():
    # logit = w_p x + x <v_p, e_user> + x <v_p, e_item> + <e_user, e_item> (no w0, no tags)
    # d logit / dx = w_p + <v_p, e_user + e_item> = 0.5 + (0.5, 0.5).(2, 2) = 2.5
    fm = zero_parameters(FM(HAND_SCHEMA, embedding_dim=2, random_state=0))
    set_row(fm.first_order, "price", 0, [0.5])
    set_row(fm.embedding, "price", 0, [0.5, 0.5])
    set_row(fm.embedding, "user", 2, [1.0, 0.0])
    set_row(fm.embedding, "item", 3, [1.0, 2.0])
    fm.forward({"user": np.array([2]), "item": np.array([3]), "price": np.array([3.0])})
    grads = fm.backward(np.array([1.0]))
    np.testing.assert_allclose(grads["price"], [2.5], rtol=1e-15)


def test_fnn_hand_worked():
    schema = HAND_SCHEMA.select(["user", "price"])
    fnn = zero_parameters(FNN(schema, embedding_dim=1, hidden=(2,), activation="relu",
                              random_state=0))
    set_row(fnn.embedding, "user", 2, [0.5, 1.0])          # z_user = [w, v] = (0.5, 1)
    set_row(fnn.embedding, "price", 0, [1.0, -1.0])        # z_price = x * (1, -1)
    hidden_layer, _, output_layer = fnn.mlp.layers
    hidden_layer.params["W"][...] = [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]
    hidden_layer.params["b"][...] = [0.0, 0.5]
    output_layer.params["W"][...] = [[2.0], [3.0]]
    output_layer.params["b"][...] = [-1.0]
    # z = (0.5, 1, 2 * 1, 2 * -1) = (0.5, 1, 2, -2)
    # hidden: (0.5 + 2 + 0, 1 - 2 + 0.5) = (2.5, -0.5) -> ReLU (2.5, 0)
    # logit: 2 * 2.5 + 3 * 0 - 1 = 4
    logits = fnn.forward({"user": np.array([2]), "price": np.array([2.0])})
    np.testing.assert_allclose(logits, [4.0], rtol=1e-15)


def test_deepfm_hand_worked():
    schema = HAND_SCHEMA.select(["user", "item"])
    model = zero_parameters(DeepFM(schema, embedding_dim=2, hidden=(1,), random_state=0))
    set_row(model.first_order, "user", 2, [0.1])
    set_row(model.first_order, "item", 3, [0.2])
    set_row(model.embedding, "user", 2, [1.0, 2.0])
    set_row(model.embedding, "item", 3, [3.0, -1.0])
    hidden_layer, _, output_layer = model.deep.layers
    hidden_layer.params["W"][...] = [[1.0], [1.0], [0.0], [1.0]]
    output_layer.params["W"][...] = [[0.5]]
    output_layer.params["b"][...] = [0.25]
    # y_FM = 0.1 + 0.2 + <(1, 2), (3, -1)> = 0.3 + (3 - 2) = 1.3
    # y_DNN: input (1, 2, 3, -1); hidden 1 + 2 + 0 - 1 = 2 -> ReLU 2; output 0.5 * 2 + 0.25 = 1.25
    # logit = 1.3 + 1.25 = 2.55
    logits = model.forward({"user": np.array([2]), "item": np.array([3])})
    np.testing.assert_allclose(logits, [2.55], rtol=1e-14)


def test_wide_deep_hand_worked():
    model = zero_parameters(WideDeep(HAND_SCHEMA, embedding_dim=1, hidden=(1,),
                                     cross_features=[("user", "item")], random_state=0))
    set_row(model.wide, "user", 2, [0.1])
    set_row(model.wide, "item", 3, [-0.3])
    # Cross id of (user 2, item 3) = 2 * V_item + 3 = 2 * 4 + 3 = 11
    model.cross_tables[0].params["weight"][11] = [0.7]
    set_row(model.embedding, "user", 2, [2.0])
    set_row(model.embedding, "item", 3, [-1.0])
    hidden_layer, _, output_layer = model.deep.layers
    hidden_layer.params["W"][...] = [[1.0], [1.0], [1.0]]
    hidden_layer.params["b"][...] = [-1.0]
    output_layer.params["W"][...] = [[0.5]]
    output_layer.params["b"][...] = [0.1]
    batch = {"user": np.array([2, 3]), "item": np.array([3, 3]), "price": np.array([3.0, 0.0])}
    # Row 0: wide 0.1 - 0.3 + 0.7 = 0.5
    #        deep input (e_user, e_item, price) = (2, -1, 3); hidden 2 - 1 + 3 - 1 = 3 -> 3
    #        output 0.5 * 3 + 0.1 = 1.6; logit 0.5 + 1.6 = 2.1
    # Row 1: user 3 has zero weight and embedding, cross id 3 * 4 + 3 = 15 has weight 0
    #        wide -0.3; deep input (0, -1, 0); hidden -1 - 1 = -2 -> 0; output 0.1
    #        logit -0.3 + 0.1 = -0.2
    np.testing.assert_allclose(model.forward(batch), [2.1, -0.2], rtol=1e-14)


def test_deep_crossing_hand_worked():
    schema = HAND_SCHEMA.select(["user", "price"])
    model = zero_parameters(DeepCrossing(schema, embedding_dim=1, residual_hidden=(1,),
                                         random_state=0))
    set_row(model.embedding, "user", 2, [1.0])
    unit = model.residual_units[0]
    unit.inner.params["W"][...] = [[1.0], [-1.0]]
    unit.inner.params["b"][...] = [2.0]
    unit.outer.params["W"][...] = [[1.0, -3.0]]
    model.scoring.params["W"][...] = [[1.5], [4.0]]
    model.scoring.params["b"][...] = [-0.5]
    # stack s = (e_user, price) = (1, 2)
    # inner: 1 * 1 + 2 * -1 + 2 = 1 -> ReLU 1;  residual r = (1, -3)
    # unit output ReLU(s + r) = ReLU(2, -1) = (2, 0)
    # score 1.5 * 2 + 4 * 0 - 0.5 = 2.5
    logits = model.forward({"user": np.array([2]), "price": np.array([2.0])})
    np.testing.assert_allclose(logits, [2.5], rtol=1e-15)


def test_nfm_hand_worked():
    model = zero_parameters(NFM(HAND_SCHEMA, embedding_dim=2, hidden=(1,), random_state=0))
    model.params["w0"][...] = 0.1
    set_row(model.first_order, "user", 2, [0.2])
    set_row(model.first_order, "item", 3, [0.3])
    set_row(model.first_order, "price", 0, [-0.1])
    set_row(model.embedding, "user", 2, [1.0, 2.0])
    set_row(model.embedding, "item", 3, [3.0, 1.0])
    set_row(model.embedding, "price", 0, [1.0, -1.0])
    model.mlp.layers[0].params["W"][...] = [[1.0], [2.0]]
    model.prediction.params["W"][...] = [[0.2]]
    # first order: 0.2 + 0.3 - 0.1 * 1 = 0.4
    # f_BI = u*i + u*p + i*p = (3, 2) + (1, -2) + (3, -1) = (7, -1)
    #   (identity: sum (5, 2), square (25, 4), sum of squares (11, 6), half difference (7, -1))
    # hidden: 7 * 1 - 1 * 2 = 5 -> ReLU 5; h . z = 0.2 * 5 = 1
    # logit = 0.1 + 0.4 + 1 = 1.5
    batch = {"user": np.array([2]), "item": np.array([3]), "price": np.array([1.0])}
    np.testing.assert_allclose(model.forward(batch), [1.5], rtol=1e-14)


def test_mlp_model_hand_worked():
    schema = HAND_SCHEMA.select(["user", "item"])
    model = zero_parameters(MLPModel(schema, embedding_dim=1, hidden=(2,), random_state=0))
    set_row(model.embedding, "user", 2, [1.0])
    set_row(model.embedding, "item", 3, [-2.0])
    hidden_layer, _, output_layer = model.mlp.layers
    hidden_layer.params["W"][...] = [[1.0, -1.0], [1.0, -1.0]]
    output_layer.params["W"][...] = [[5.0], [3.0]]
    output_layer.params["b"][...] = [1.0]
    # input (1, -2); hidden (1 - 2, -1 + 2) = (-1, 1) -> ReLU (0, 1); output 3 * 1 + 1 = 4
    logits = model.forward({"user": np.array([2]), "item": np.array([3])})
    np.testing.assert_allclose(logits, [4.0], rtol=1e-15)


# --------------------------------------------------------------------------------------
# Relations between models
# --------------------------------------------------------------------------------------

def test_nfm_without_hidden_layers_equals_fm():
    # With h = (1, ..., 1), h . f_BI = sum_k f_BI,k is the FM pairwise term.
    schema, batch = tiny_schema(), tiny_batch()
    fm = randomize(FM(schema, embedding_dim=3, random_state=0), random_state=1)
    nfm = NFM(schema, embedding_dim=3, hidden=(), random_state=0)
    nfm.params["w0"][...] = fm.params["w0"]
    nfm.first_order.table.params["weight"][...] = fm.first_order.table.params["weight"]
    nfm.embedding.table.params["weight"][...] = fm.embedding.table.params["weight"]
    nfm.prediction.params["W"][...] = 1.0
    np.testing.assert_allclose(nfm.forward(batch), fm.forward(batch), rtol=1e-12)


def test_deepfm_with_silent_deep_part_equals_fm():
    schema, batch = tiny_schema(), tiny_batch()
    fm = randomize(FM(schema, embedding_dim=3, random_state=0), random_state=1)
    model = randomize(DeepFM(schema, embedding_dim=3, hidden=(4,), random_state=0))
    model.first_order.table.params["weight"][...] = fm.first_order.table.params["weight"]
    model.embedding.table.params["weight"][...] = fm.embedding.table.params["weight"]
    output_layer = model.deep.layers[-1]
    output_layer.params["W"][...] = 0.0
    output_layer.params["b"][...] = fm.params["w0"]
    np.testing.assert_allclose(model.forward(batch), fm.forward(batch), rtol=1e-12)


def test_deepfm_shared_embedding_gradient_is_sum_of_parts(monkeypatch):
    schema, batch = tiny_schema(), tiny_batch()
    model = randomize(DeepFM(schema, embedding_dim=3, hidden=(4,), random_state=0))
    upstream = np.array([0.5, -1.0, 2.0])

    def embedding_grad():
        model.zero_grad()
        model.forward(batch)
        model.backward(upstream)
        return model.embedding.table.grads["weight"].to_dense()

    both = embedding_grad()
    with monkeypatch.context() as patch:
        patch.setattr(model.interaction, "backward",
                      lambda dout: np.zeros((3, len(schema), 3)))
        deep_only = embedding_grad()
    with monkeypatch.context() as patch:
        patch.setattr(model.deep, "backward", lambda dout: np.zeros((3, len(schema) * 3)))
        fm_only = embedding_grad()

    np.testing.assert_allclose(both, fm_only + deep_only, rtol=1e-12, atol=1e-15)
    assert np.abs(fm_only).max() > 1e-3
    assert np.abs(deep_only).max() > 1e-3

    # The FM part alone, by its formula: field f of row b receives g_b (sum_i e_bi - e_bf).
    E = model.embedding.forward(batch)                                 # (B, F, K)
    expected = np.zeros_like(both)
    table, _ = model.embedding.table_rows("user")
    for b in range(3):
        d_E = upstream[b] * (E[b].sum(axis=0) - E[b])                  # (F, K)
        for f, field in enumerate(schema.fields):
            _, offset = model.embedding.table_rows(field.name)
            value = batch[field.name][b]
            if field.kind == "sparse":
                expected[offset + value] += d_E[f]
            elif field.kind == "multi":
                for tag in value[value != 0]:
                    expected[offset + tag] += d_E[f]
            else:
                expected[offset] += value * d_E[f]
    assert table is model.embedding.table
    np.testing.assert_allclose(fm_only, expected, rtol=1e-12, atol=1e-15)


# --------------------------------------------------------------------------------------
# FNN's two stages
# --------------------------------------------------------------------------------------

def test_fnn_from_fm_copies_weights_exactly():
    schema = tiny_schema()
    fm = randomize(FM(schema, embedding_dim=3, random_state=0), random_state=5)
    fnn = FNN.from_fm(fm, hidden=(4,), random_state=1)
    assert fnn.initialized_from == "fm"
    assert fnn.embedding_dim == 3
    for field in schema.fields:
        rows = 1 if field.kind == "dense" else field.vocab_size
        w_table, w_offset = fm.first_order.table_rows(field.name)
        v_table, v_offset = fm.embedding.table_rows(field.name)
        table, offset = fnn.embedding.table_rows(field.name)
        assert offset == 0
        assert table.num_embeddings == rows
        np.testing.assert_array_equal(table.params["weight"][:, 0],
                                      w_table.params["weight"][w_offset:w_offset + rows, 0])
        np.testing.assert_array_equal(table.params["weight"][:, 1:],
                                      v_table.params["weight"][v_offset:v_offset + rows])
    np.testing.assert_array_equal(fnn.mlp.layers[-1].params["b"], fm.params["w0"])


def test_fnn_from_fm_input_is_fm_weights():
    # The first hidden layer receives, per field, x_f [w_f, v_f] taken from the FM.
    schema, batch = tiny_schema(), tiny_batch()
    fm = randomize(FM(schema, embedding_dim=2, random_state=0), random_state=5)
    fnn = FNN.from_fm(fm, hidden=(3,), random_state=1)
    fnn.forward(batch)
    w = fm.first_order.forward(batch)                                  # (B, F, 1)
    v = fm.embedding.forward(batch)                                    # (B, F, K)
    expected_input = np.concatenate([w, v], axis=2).reshape(3, -1)     # (B, F (K + 1))
    np.testing.assert_allclose(fnn.mlp.layers[0]._x, expected_input, rtol=1e-15)


def test_fnn_hidden_layers_do_not_depend_on_initialisation():
    # The same random_state gives the same hidden layers, so the comparison of FM-started and
    # random-started FNNs changes only the embeddings.
    schema = tiny_schema()
    fm = randomize(FM(schema, embedding_dim=2, random_state=0), random_state=5)
    from_fm = FNN.from_fm(fm, hidden=(3,), random_state=9)
    plain = FNN(schema, embedding_dim=2, hidden=(3,), random_state=9)
    assert plain.initialized_from == "random"
    np.testing.assert_array_equal(from_fm.mlp.layers[0].params["W"],
                                  plain.mlp.layers[0].params["W"])


@pytest.mark.parametrize("fm", [None, "fm", 3.0], ids=["None", "string", "float"])
def test_fnn_from_fm_rejects_non_fm(fm):
    with pytest.raises(ValueError, match="fm must be a trained minirec FM"):
        FNN.from_fm(fm)


def test_fnn_from_fm_rejects_untrained_fm():
    with pytest.raises(ValueError, match="fm is untrained"):
        FNN.from_fm(FM(tiny_schema(), embedding_dim=2, random_state=0))


def test_fnn_load_fm_rejects_incompatible_fm():
    schema = tiny_schema()
    trained = randomize(FM(schema, embedding_dim=2, random_state=0))
    with pytest.raises(ValueError, match="embedding_dim=2.*embedding_dim=3"):
        FNN(schema, embedding_dim=3, random_state=0).load_fm(trained)
    other = randomize(FM(schema.select(["user", "item"]), embedding_dim=2, random_state=0))
    with pytest.raises(ValueError, match="schemas must be equal"):
        FNN(schema, embedding_dim=2, random_state=0).load_fm(other)


def test_fnn_checkpoint_rebuilds_without_fm(tmp_path):
    schema, batch = tiny_schema(), tiny_batch()
    fm = randomize(FM(schema, embedding_dim=2, random_state=0), random_state=5)
    fnn = FNN.from_fm(fm, hidden=(3,), random_state=1)
    path = save_checkpoint(tmp_path / "fnn.npz", fnn)
    restored, metadata = load_checkpoint(path)
    assert isinstance(restored, FNN)
    assert metadata["config"]["hidden"] == [3]
    fnn.eval()
    np.testing.assert_array_equal(restored.forward(batch), fnn.forward(batch))


# --------------------------------------------------------------------------------------
# Wide & Deep crosses
# --------------------------------------------------------------------------------------

def test_cross_ids_product_vocabulary():
    ids = cross_ids(np.array([0, 2, 3]), np.array([1, 3, 4]), 5)
    np.testing.assert_array_equal(ids, [0 * 5 + 1, 2 * 5 + 3, 3 * 5 + 4])


def test_cross_ids_hashed_matches_formula():
    a, b = np.array([2, 3, 7, 2]), np.array([3, 4, 0, 3])
    hashed = cross_ids(a, b, 10, buckets=7)
    # The same hash with Python integers: product id times the odd multiplier modulo 2^64,
    # the top 32 bits, modulo the bucket count.
    expected = [((int(x) * 10 + int(y)) * 0x9E3779B97F4A7C15 % 2**64 >> 32) % 7
                for x, y in zip(a, b)]
    np.testing.assert_array_equal(hashed, expected)
    assert hashed[0] == hashed[3]


def test_wide_deep_cross_weight_reaches_only_its_pair():
    schema = HAND_SCHEMA
    model = zero_parameters(WideDeep(schema, embedding_dim=1, hidden=(1,),
                                     cross_features=[("user", "item")], random_state=0))
    batch = {"user": np.array([2, 2, 3]), "item": np.array([3, 2, 3]),
             "price": np.zeros(3)}
    before = model.forward(batch)
    model.cross_tables[0].params["weight"][2 * 4 + 3] = 1.5
    np.testing.assert_allclose(model.forward(batch) - before, [1.5, 0.0, 0.0])
    model.backward(np.array([1.0, 2.0, 4.0]))
    rows, values = model.cross_tables[0].grads["weight"].coalesce()
    np.testing.assert_array_equal(rows, [2 * 4 + 2, 2 * 4 + 3, 3 * 4 + 3])
    np.testing.assert_allclose(values[:, 0], [2.0, 1.0, 4.0])


@pytest.mark.parametrize("crosses, buckets, message", [
    ([("user", "nope")], None, "'nope', which is not a sparse field"),
    ([("user", "tags")], None, "'tags', which is not a sparse field"),
    ([("user", "user")], None, "crosses a field with itself"),
    ([("user", "item"), ("item", "user")], None, "repeats the pair"),
    ([("user",)], None, "must be a pair of field names"),
    ("user", None, "cross_features must be a list"),
    ([("user", "item")], 0, "cross_buckets must be a positive integer"),
])
def test_wide_deep_rejects_bad_crosses(crosses, buckets, message):
    with pytest.raises(ValueError, match=message):
        WideDeep(tiny_schema(), cross_features=crosses, cross_buckets=buckets)


def test_wide_deep_large_cross_needs_buckets():
    schema = Schema([Field("a", "sparse", 5000), Field("b", "sparse", 5000)])
    with pytest.raises(ValueError, match="set cross_buckets"):
        WideDeep(schema, cross_features=[("a", "b")])
    model = WideDeep(schema, embedding_dim=2, hidden=(2,), cross_features=[("a", "b")],
                     cross_buckets=1000, random_state=0)
    assert model.cross_tables[0].num_embeddings == 1000


def test_wide_deep_rejects_schema_without_categorical_fields():
    with pytest.raises(ValueError, match="at least one sparse or multi field"):
        WideDeep(Schema([Field("price", "dense")]))


# --------------------------------------------------------------------------------------
# Bad input and configuration
# --------------------------------------------------------------------------------------

def bad_batches():
    missing = tiny_batch()
    del missing["item"]
    extra = dict(tiny_batch(), color=np.array([1, 2, 3]))
    float_ids = dict(tiny_batch(), item=np.array([3.0, 4.0, 3.0]))
    wrong_shape = dict(tiny_batch(), user=np.array([[2], [3], [2]]))
    out_of_range = dict(tiny_batch(), item=np.array([3, 5, 3]))
    negative = dict(tiny_batch(), tags=np.array([[2, -1, 0], [0, 0, 0], [3, 3, 4]]))
    int_price = dict(tiny_batch(), price=np.array([1, 2, 3]))
    return [
        pytest.param(missing, "'item'", id="missing field"),
        pytest.param(extra, "'color'", id="extra field"),
        pytest.param(float_ids, "'item'.*dtype float64", id="float ids"),
        pytest.param(wrong_shape, "'user'.*shape", id="wrong shape"),
        pytest.param(out_of_range, "'item' contains id 5", id="id out of range"),
        pytest.param(negative, "'tags' contains id -1", id="negative id"),
        pytest.param(int_price, "'price'.*float", id="integer dense value"),
    ]


@pytest.mark.parametrize("model_name", list(FACTORIES))
@pytest.mark.parametrize("batch, message", bad_batches())
def test_bad_batch_raises_naming_field(model_name, batch, message):
    model = FACTORIES[model_name](tiny_schema(), random_state=0)
    with pytest.raises(ValueError, match=message):
        model.forward(batch)


CONFIG_ERRORS = [
    (lambda s: FM(s, embedding_dim=0), "embedding_dim"),
    (lambda s: FNN(s, embedding_dim=0), "embedding_dim"),
    (lambda s: FNN(s, hidden=[]), "hidden must list at least one"),
    (lambda s: FNN(s, hidden=[4, 0]), r"hidden\[1\]"),
    (lambda s: DeepFM(s, embedding_dim=-1), "embedding_dim"),
    (lambda s: DeepFM(s, hidden=()), "hidden must list at least one"),
    (lambda s: DeepFM(s, dropout=1.0), "dropout"),
    (lambda s: WideDeep(s, hidden=[]), "hidden must list at least one"),
    (lambda s: WideDeep(s, embedding_dim=0), "embedding_dim"),
    (lambda s: DeepCrossing(s, residual_hidden=[]), "residual_hidden must list at least one"),
    (lambda s: DeepCrossing(s, embedding_dim=0), "embedding_dim"),
    (lambda s: NFM(s, embedding_dim=0), "embedding_dim"),
    (lambda s: NFM(s, hidden=8), "hidden must be a list"),
    (lambda s: MLPModel(s, hidden=[]), "hidden must list at least one"),
    (lambda s: MLPModel(s, embedding_dim=2.5), "embedding_dim"),
    (lambda s: FM(s, dtype=np.int32), "dtype"),
]


@pytest.mark.parametrize("build, message", CONFIG_ERRORS)
def test_config_error_names_argument(build, message):
    with pytest.raises(ValueError, match=message):
        build(tiny_schema())


@pytest.mark.parametrize("model_name", list(FACTORIES))
def test_sequence_field_rejected(model_name):
    schema = Schema([Field("item", "sparse", 5), Field("history", "sequence", max_len=3,
                                                        vocab_of="item")])
    with pytest.raises(ValueError, match="sequence field"):
        FACTORIES[model_name](schema, random_state=0)


# --------------------------------------------------------------------------------------
# dtype, configuration round trip
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("model_name", list(FACTORIES))
def test_float32_model_keeps_float32(model_name):
    model = FACTORIES[model_name](tiny_schema(), random_state=0, dtype=np.float32)
    logits = model.forward(tiny_batch())
    assert logits.dtype == np.float32
    input_grads = model.backward(np.ones(3, dtype=np.float32))
    assert input_grads["price"].dtype == np.float32
    for name, value, grad in model.parameters():
        assert value.dtype == np.float32, name
        assert dense_grad(grad).dtype == np.float32, name


@pytest.mark.parametrize("model_name", list(FACTORIES))
def test_config_is_json_and_rebuilds_model(model_name, tmp_path):
    schema, batch = tiny_schema(), tiny_batch()
    model = randomize(FACTORIES[model_name](schema, random_state=0), random_state=3)
    config = json.loads(json.dumps(model.config))
    rebuilt = type(model)(schema, **config)
    rebuilt.load_state_dict(model.state_dict())
    np.testing.assert_array_equal(rebuilt.forward(batch), model.forward(batch))

    restored, _ = load_checkpoint(save_checkpoint(tmp_path / "model.npz", model))
    assert type(restored) is type(model)
    model.eval()
    np.testing.assert_array_equal(restored.forward(batch), model.forward(batch))


@pytest.mark.parametrize("model_name", list(FACTORIES))
def test_backward_returns_dense_field_gradient_only(model_name):
    model = randomize(FACTORIES[model_name](tiny_schema(), random_state=0))
    model.forward(tiny_batch())
    grads = model.backward(np.ones(3))
    assert set(grads) == {"price"}
    assert grads["price"].shape == (3,)
