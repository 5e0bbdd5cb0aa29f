"""Tests of the training loop: learning, early stopping, test isolation, non-finite values."""

import io

import numpy as np
import pytest

from minirec import train as train_module
from minirec.data.dataset import Dataset, TaskSplits
from minirec.data.schema import Field, Schema
from minirec.models.base import Model
from minirec.nn.activations import sigmoid
from minirec.nn.base import check_random_state
from minirec.optim import SGD, Adagrad
from minirec.train import TrainingError, evaluate, fit, predict

VOCAB = 12          # ids 2 .. 11 are values; 0 and 1 are reserved
SPARSE_FIELDS = ("a", "b", "c")


class TinyLogReg(Model):
    """Logistic regression: one weight per id of each sparse field, one per dense field."""

    name = "tiny-logreg"

    def __init__(self, schema, *, init_std=0.01, dense_init=0.0, random_state=None,
                 dtype=np.float64):
        super().__init__(schema, dtype=dtype, init_std=init_std, dense_init=dense_init)
        rng = check_random_state(random_state)
        for f in schema.sparse_fields:
            self.add_param(f"w_{f.name}",
                           (init_std * rng.standard_normal(f.vocab_size)).astype(self.dtype))
        self.add_param("v", np.full(len(schema.dense_fields), dense_init, dtype=self.dtype))
        self.add_param("bias", np.zeros(1, dtype=self.dtype))

    def _forward(self, batch):
        self._batch = batch
        logits = np.full(len(batch[self.schema.fields[0].name]), self.params["bias"][0])
        for f in self.schema.sparse_fields:
            logits = logits + self.params[f"w_{f.name}"][batch[f.name]]
        for index, f in enumerate(self.schema.dense_fields):
            logits = logits + self.params["v"][index] * batch[f.name]
        return logits.astype(self.dtype)

    def backward(self, dlogits):
        batch = self._batch
        for f in self.schema.sparse_fields:
            np.add.at(self.grads[f"w_{f.name}"], batch[f.name], dlogits)
        d_inputs = {}
        for index, f in enumerate(self.schema.dense_fields):
            self.grads["v"][index] += np.sum(dlogits * batch[f.name])
            d_inputs[f.name] = dlogits * self.params["v"][index]
        self.grads["bias"][0] += np.sum(dlogits)
        return d_inputs


def make_schema(dense=True):
    fields = [Field(name, "sparse", VOCAB) for name in SPARSE_FIELDS]
    if dense:
        fields.append(Field("x", "dense"))
    return Schema(fields)


def make_rows(n, rng, schema, true_weights, *, flip=False, rating=False):
    columns = {name: rng.integers(2, VOCAB, size=n) for name in SPARSE_FIELDS}
    logits = sum(true_weights[name][columns[name]] for name in SPARSE_FIELDS)
    if "x" in schema:
        columns["x"] = rng.standard_normal(n)
        logits = logits + 1.5 * columns["x"]
    if rating:
        labels = logits + 0.1 * rng.standard_normal(n)
    else:
        labels = (rng.random(n) < sigmoid(logits)).astype(np.float64)
        if flip:
            labels = 1.0 - labels
    groups = rng.integers(0, 20, size=n)
    return Dataset(schema, columns, labels, groups=groups)


def make_world(n_train=3000, n_valid=1000, n_test=1000, *, seed=0, flip_test=False,
               rating=False, dense=True):
    """An easy world: strong first-order weights, so a logistic regression reaches AUC > 0.8."""
    rng = np.random.default_rng(seed)
    schema = make_schema(dense)
    true_weights = {name: np.r_[0.0, 0.0, 2.0 * rng.standard_normal(VOCAB - 2)]
                    for name in SPARSE_FIELDS}
    return TaskSplits(
        "tiny",
        make_rows(n_train, rng, schema, true_weights, rating=rating),
        make_rows(n_valid, rng, schema, true_weights, rating=rating),
        make_rows(n_test, rng, schema, true_weights, flip=flip_test, rating=rating),
        {}, {"weights": true_weights},
    )


def true_state(model, splits, sign=1.0):
    """A state dict holding the world's true weights (times ``sign``)."""
    state = model.state_dict()
    for name in SPARSE_FIELDS:
        state[f"w_{name}"] = sign * splits.truth["weights"][name]
    if "v" in state and state["v"].size:
        state["v"] = np.array([sign * 1.5])
    return state


class ScriptedOptimizer:
    """Sets the weights to a scripted state per epoch instead of following gradients.

    Epoch e (counted from 1) ends with the weights ``states[e - 1]``, so a test decides
    which epoch is best on the validation split.
    """

    def __init__(self, model, states, steps_per_epoch):
        self.model = model
        self.states = states
        self.steps_per_epoch = steps_per_epoch
        self.steps = 0

    def zero_grad(self):
        self.model.zero_grad()

    def step(self):
        epoch = self.steps // self.steps_per_epoch
        self.model.load_state_dict(self.states[min(epoch, len(self.states) - 1)])
        self.steps += 1


def states_good_then_bad(model, splits):
    good = true_state(model, splits, 1.0)
    bad = true_state(model, splits, -1.0)
    return [good, bad, bad, bad, bad]


# --------------------------------------------------------------------------------------
# learning and history
# --------------------------------------------------------------------------------------

def test_fit_learns_easy_world():
    splits = make_world()
    model = TinyLogReg(splits.schema, random_state=0)
    before = evaluate(model, splits.valid)["auc"]
    result = fit(model, splits, lr=0.05, epochs=4, batch_size=128, verbose=False)
    assert before < 0.7
    assert result.valid["auc"] > 0.8
    assert result.test["auc"] > 0.8
    assert result.model is model


def test_history_has_one_entry_per_epoch():
    splits = make_world()
    model = TinyLogReg(splits.schema, random_state=0)
    result = fit(model, splits, lr=0.05, epochs=3, batch_size=128, patience=None,
                 verbose=False)
    assert [entry["epoch"] for entry in result.history] == [1, 2, 3]
    for entry in result.history:
        for key in ("train_loss", "valid_loss", "valid_auc", "valid_logloss", "seconds"):
            assert np.isfinite(entry[key]), key
        assert entry["seconds"] > 0
    # The training loss falls on this easy world.
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    best = result.history[result.best_epoch - 1]
    assert best["valid_auc"] == max(entry["valid_auc"] for entry in result.history)
    assert result.valid["auc"] == best["valid_auc"]
    assert result.train_seconds == pytest.approx(sum(e["seconds"] for e in result.history))
    assert result.examples_per_second == pytest.approx(
        3 * len(splits.train) / result.train_seconds)


def test_valid_metrics_match_evaluate_of_restored_weights():
    splits = make_world()
    model = TinyLogReg(splits.schema, random_state=0)
    result = fit(model, splits, lr=0.05, epochs=3, batch_size=128, verbose=False)
    again = evaluate(model, splits.valid)
    assert again == result.valid
    assert evaluate(model, splits.test) == result.test


def test_fit_is_reproducible_with_a_seed():
    results = []
    for _ in range(2):
        splits = make_world()
        model = TinyLogReg(splits.schema, random_state=3)
        result = fit(model, splits, lr=0.05, epochs=2, batch_size=64, random_state=7,
                     verbose=False)
        results.append((result, model.state_dict()))
    (first, first_state), (second, second_state) = results
    for a, b in zip(first.history, second.history):
        assert {k: v for k, v in a.items() if k != "seconds"} == \
            {k: v for k, v in b.items() if k != "seconds"}
    for name in first_state:
        np.testing.assert_array_equal(first_state[name], second_state[name])


@pytest.mark.parametrize("make_optimizer", [lambda m: SGD(m, lr=0.5),
                                            lambda m: Adagrad(m, lr=0.3)],
                         ids=["sgd", "adagrad"])
def test_fit_accepts_optimizer_objects(make_optimizer):
    splits = make_world()
    model = TinyLogReg(splits.schema, random_state=0)
    result = fit(model, splits, optimizer=make_optimizer(model), epochs=3, batch_size=128,
                 verbose=False)
    assert result.valid["auc"] > 0.8


@pytest.mark.parametrize("name", ["adam", "adagrad", "sgd"])
def test_fit_builds_optimizer_by_name(name):
    splits = make_world()
    model = TinyLogReg(splits.schema, random_state=0)
    lr = {"adam": 0.05, "adagrad": 0.3, "sgd": 0.5}[name]
    result = fit(model, splits, optimizer=name, lr=lr, epochs=3, batch_size=128, verbose=False)
    assert result.valid["auc"] > 0.8


def test_fit_trains_float32_model():
    splits = make_world()
    model = TinyLogReg(splits.schema, random_state=0, dtype=np.float32)
    result = fit(model, splits, lr=0.05, epochs=2, batch_size=128, verbose=False)
    assert result.valid["auc"] > 0.8
    assert all(value.dtype == np.float32 for value in model.state_dict().values())


def test_rating_task_uses_mse_and_rmse():
    splits = make_world(rating=True)
    model = TinyLogReg(splits.schema, random_state=0)
    baseline = float(np.std(splits.valid.labels))
    result = fit(model, splits, lr=0.1, epochs=5, batch_size=64, verbose=False)
    assert result.task == "rating"
    assert set(result.history[0]) >= {"valid_rmse", "valid_mae", "valid_loss"}
    # Predicting the mean would give an RMSE equal to the labels' standard deviation.
    assert result.valid["rmse"] < 0.5 * baseline
    assert result.valid["loss"] == pytest.approx(result.valid["rmse"] ** 2)


# --------------------------------------------------------------------------------------
# early stopping and the test split
# --------------------------------------------------------------------------------------

def test_early_stopping_restores_best_weights():
    splits = make_world(n_train=512)
    model = TinyLogReg(splits.schema, random_state=0)
    steps_per_epoch = 512 // 128
    states = states_good_then_bad(model, splits)
    optimizer = ScriptedOptimizer(model, states, steps_per_epoch)
    result = fit(model, splits, optimizer=optimizer, epochs=5, batch_size=128, patience=2,
                 verbose=False)

    # epoch 1 ends at the true weights, epochs 2 and 3 at their negation: stop after 3
    assert result.best_epoch == 1
    assert len(result.history) == 3
    assert result.stopped_early
    assert result.history[0]["valid_auc"] > 0.8
    assert result.history[1]["valid_auc"] < 0.2
    state = model.state_dict()
    for name, value in states[0].items():
        np.testing.assert_array_equal(state[name], value)


def test_patience_none_runs_every_epoch():
    splits = make_world(n_train=512)
    model = TinyLogReg(splits.schema, random_state=0)
    optimizer = ScriptedOptimizer(model, states_good_then_bad(model, splits), 4)
    result = fit(model, splits, optimizer=optimizer, epochs=5, batch_size=128, patience=None,
                 verbose=False)
    assert len(result.history) == 5
    assert not result.stopped_early
    assert result.best_epoch == 1


def test_test_split_never_steers_selection():
    # The test labels are flipped, so the test split would prefer the bad epochs; the
    # validation split must still choose epoch 1.
    results = {}
    for flip in (False, True):
        splits = make_world(n_train=512, flip_test=flip)
        model = TinyLogReg(splits.schema, random_state=0)
        optimizer = ScriptedOptimizer(model, states_good_then_bad(model, splits), 4)
        results[flip] = fit(model, splits, optimizer=optimizer, epochs=5, batch_size=128,
                            patience=2, verbose=False)
    normal, flipped = results[False], results[True]
    assert flipped.best_epoch == normal.best_epoch == 1
    assert [e["valid_auc"] for e in flipped.history] == [e["valid_auc"] for e in normal.history]
    assert flipped.valid == normal.valid
    assert flipped.test["auc"] < 0.2
    assert flipped.test["auc"] == pytest.approx(1.0 - normal.test["auc"])


def test_test_split_scored_only_after_training():
    splits = make_world(n_train=256)
    seen = []

    class Recording(TinyLogReg):
        def _forward(self, batch):
            seen.append(len(batch["a"]))
            return super()._forward(batch)

    model = Recording(splits.schema, random_state=0)
    fit(model, splits, lr=0.05, epochs=2, batch_size=256, patience=None, verbose=False)
    # per epoch: one training batch of 256 rows and one validation pass of 1000 rows;
    # then one test pass of 1000 rows at the very end
    assert seen == [256, 1000, 256, 1000, 1000]


# --------------------------------------------------------------------------------------
# non-finite values
# --------------------------------------------------------------------------------------

def test_nan_output_stops_before_parameters_change():
    splits = make_world(n_train=512)
    snapshots = []

    class NaNAtThirdCall(TinyLogReg):
        calls = 0

        def _forward(self, batch):
            logits = super()._forward(batch)
            if self.training:
                NaNAtThirdCall.calls += 1
                if NaNAtThirdCall.calls == 3:
                    snapshots.append(self.state_dict())
                    logits = logits.copy()
                    logits[5] = np.nan
            return logits

    model = NaNAtThirdCall(splits.schema, random_state=0)
    with pytest.raises(TrainingError) as caught:
        fit(model, splits, lr=0.05, epochs=2, batch_size=128, verbose=False)
    error = caught.value
    assert isinstance(error, FloatingPointError)
    assert (error.epoch, error.step) == (1, 3)
    assert error.quantity == "model output"
    assert "non-finite model output at epoch 1, step 3" in str(error)
    state = model.state_dict()
    for name, value in snapshots[0].items():
        np.testing.assert_array_equal(state[name], value)


class PlainSGD:
    """An optimizer outside minirec.optim, so the loop checks the gradients itself."""

    def __init__(self, model, lr):
        self.model = model
        self.lr = lr

    def zero_grad(self):
        self.model.zero_grad()

    def step(self):
        for _, param, grad in self.model.parameters():
            param -= self.lr * grad


@pytest.mark.parametrize("optimizer", ["adam", "plain"])
def test_nan_gradient_stops_before_parameters_change(optimizer):
    splits = make_world(n_train=512)
    snapshots = []

    class BadGradient(TinyLogReg):
        calls = 0

        def backward(self, dlogits):
            result = super().backward(dlogits)
            BadGradient.calls += 1
            if BadGradient.calls == 2:
                snapshots.append(self.state_dict())
                self.grads["w_b"][4] = np.inf
            return result

    model = BadGradient(splits.schema, random_state=0)
    if optimizer == "plain":
        optimizer = PlainSGD(model, lr=0.05)
    with pytest.raises(TrainingError) as caught:
        fit(model, splits, optimizer=optimizer, lr=0.05, epochs=2, batch_size=128,
            verbose=False)
    assert (caught.value.epoch, caught.value.step) == (1, 2)
    assert caught.value.quantity == "gradient of w_b"
    if isinstance(optimizer, PlainSGD):
        assert "entry (4,)" in str(caught.value)
    state = model.state_dict()
    for name, value in snapshots[0].items():
        np.testing.assert_array_equal(state[name], value)


def test_overflowing_update_stops_at_validation():
    splits = make_world(n_train=256)
    model = TinyLogReg(splits.schema, random_state=0)
    overflowed = model.state_dict()
    overflowed["bias"][0] = np.inf
    optimizer = ScriptedOptimizer(model, [overflowed], steps_per_epoch=1)
    with pytest.raises(TrainingError) as caught:
        fit(model, splits, optimizer=optimizer, epochs=2, batch_size=256, verbose=False)
    assert (caught.value.epoch, caught.value.step) == (1, 1)
    assert caught.value.quantity == "validation output"
    assert "1000 of 1000 rows" in str(caught.value)
    assert "no parameter was changed" not in str(caught.value)


def test_extreme_dense_value_stops_at_first_step():
    splits = make_world(n_train=300)
    splits.train.columns["x"][17] = 1e308   # times the dense weight 10 overflows to inf
    model = TinyLogReg(splits.schema, random_state=0, dense_init=10.0)
    initial = model.state_dict()
    with np.errstate(over="ignore"):
        with pytest.raises(TrainingError, match="non-finite model output at epoch 1, step 1"):
            fit(model, splits, lr=0.05, epochs=2, batch_size=300, verbose=False)
    for name, value in initial.items():
        np.testing.assert_array_equal(model.state_dict()[name], value)


# --------------------------------------------------------------------------------------
# evaluate, predict, arguments
# --------------------------------------------------------------------------------------

def test_evaluate_reports_gauc_with_groups():
    splits = make_world()
    model = TinyLogReg(splits.schema, random_state=0)
    model.load_state_dict(true_state(model, splits))
    metrics = evaluate(model, splits.valid, batch_size=97)
    assert set(metrics) == {"loss", "auc", "logloss", "gauc"}
    assert metrics["auc"] > 0.8
    assert metrics["gauc"] > 0.7
    assert metrics["loss"] == pytest.approx(metrics["logloss"], abs=1e-9)
    without_groups = Dataset(splits.valid.schema, splits.valid.columns, splits.valid.labels)
    assert "gauc" not in evaluate(model, without_groups)


def test_evaluate_one_class_gives_nan_auc():
    splits = make_world()
    model = TinyLogReg(splits.schema, random_state=0)
    ones = Dataset(splits.valid.schema, splits.valid.columns, np.ones(len(splits.valid)))
    metrics = evaluate(model, ones)
    assert np.isnan(metrics["auc"])
    assert np.isfinite(metrics["logloss"])


def test_predict_returns_probabilities_in_eval_mode():
    splits = make_world()
    model = TinyLogReg(splits.schema, random_state=0)
    model.load_state_dict(true_state(model, splits))
    model.train()
    probabilities = predict(model, splits.test, batch_size=333)
    expected = sigmoid(model.forward(splits.test.columns))
    np.testing.assert_allclose(probabilities, expected, rtol=0, atol=1e-15)
    assert model.training


@pytest.mark.parametrize("kwargs, text", [
    ({"epochs": 0}, "epochs must be a positive integer"),
    ({"batch_size": -1}, "batch_size must be a positive integer"),
    ({"patience": 0}, "patience must be a positive integer"),
    ({"optimizer": "rmsprop"}, "optimizer must be one of adam, adagrad, sgd"),
    ({"task": "ranking"}, "task must be 'click' or 'rating'"),
])
def test_fit_rejects_bad_arguments(kwargs, text):
    splits = make_world(n_train=100)
    model = TinyLogReg(splits.schema, random_state=0)
    with pytest.raises(ValueError, match=text):
        fit(model, splits, verbose=False, **kwargs)


def test_fit_rejects_one_class_validation_split():
    splits = make_world(n_train=100)
    valid = Dataset(splits.valid.schema, splits.valid.columns, np.zeros(len(splits.valid)))
    splits = TaskSplits("tiny", splits.train, valid, splits.test)
    model = TinyLogReg(splits.schema, random_state=0)
    with pytest.raises(ValueError, match="only one class"):
        fit(model, splits, verbose=False)


def test_fit_rejects_optimizer_without_step():
    splits = make_world(n_train=100)
    model = TinyLogReg(splits.schema, random_state=0)
    with pytest.raises(TypeError, match="step"):
        fit(model, splits, optimizer=object(), verbose=False)


# --------------------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------------------

def test_verbose_false_writes_nothing():
    lines = []
    splits = make_world(n_train=256)
    fit(TinyLogReg(splits.schema, random_state=0), splits, lr=0.05, epochs=2, verbose=False,
        log=lines.append)
    assert lines == []


def test_epoch_summary_lines_go_to_log_callable():
    lines = []
    splits = make_world(n_train=512)
    model = TinyLogReg(splits.schema, random_state=0)
    optimizer = ScriptedOptimizer(model, states_good_then_bad(model, splits), 4)
    fit(model, splits, optimizer=optimizer, epochs=5, batch_size=128, log=lines.append)
    epoch_lines = [line for line in lines if line.startswith("epoch ")]
    assert len(epoch_lines) == 3
    assert "valid AUC" in epoch_lines[0]
    assert "best so far" in epoch_lines[0]
    assert any("early stopping" in line for line in lines)
    assert any("restored the weights of epoch 1" in line for line in lines)
    assert lines[-1].startswith("test: AUC")


def test_chinese_lines():
    lines = []
    splits = make_world(n_train=256)
    fit(TinyLogReg(splits.schema, random_state=0), splits, lr=0.05, epochs=1,
        log=lines.append, lang="zh")
    assert lines[0].startswith("第 1/1 轮")
    assert lines[-1].startswith("测试集")


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_rewritten_in_place_on_terminal(monkeypatch):
    monkeypatch.setattr(train_module, "TTY_PROGRESS_INTERVAL", 0.0)
    stream = FakeTerminal()
    splits = make_world(n_train=512)
    fit(TinyLogReg(splits.schema, random_state=0), splits, lr=0.05, epochs=1, batch_size=128,
        log=stream)
    text = stream.getvalue()
    assert text.count("\r") >= 4
    assert "examples/s" in text
    assert "loss so far" in text
    # the summary line replaces the progress line and ends with a newline
    assert "\r\x1b[Kepoch 1/1: train loss" in text


def test_progress_lines_without_terminal(monkeypatch):
    monkeypatch.setattr(train_module, "LOG_PROGRESS_INTERVAL", 0.0)
    stream = io.StringIO()
    splits = make_world(n_train=512)
    fit(TinyLogReg(splits.schema, random_state=0), splits, lr=0.05, epochs=1, batch_size=128,
        log=stream)
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    progress = [line for line in lines if "examples/s" in line]
    assert len(progress) == 4
    assert progress[-1].startswith("  epoch 1/1: 512/512 examples")


def test_progress_lines_are_rare_by_default():
    stream = io.StringIO()
    splits = make_world(n_train=512)
    fit(TinyLogReg(splits.schema, random_state=0), splits, lr=0.05, epochs=2, batch_size=128,
        log=stream)
    # a fraction-of-a-second epoch writes its summary only
    assert "examples/s" not in stream.getvalue()


# --------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_training_curves_figure(tmp_path):
    from minirec.plots import plot_training_curves

    splits = make_world(n_train=256)
    result = fit(TinyLogReg(splits.schema, random_state=0), splits, lr=0.05, epochs=2,
                 verbose=False)
    path = plot_training_curves(result.history, tmp_path / "curves.png",
                                best_epoch=result.best_epoch, title="tiny")
    assert path == tmp_path / "curves.png"
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with pytest.raises(ValueError, match="history is empty"):
        plot_training_curves([], tmp_path / "empty.png")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        plot_training_curves(result.history, tmp_path / "absent" / "curves.png")


def test_attention_figures(tmp_path):
    from minirec.plots import plot_attention

    pairs = plot_attention(np.array([0.1, 0.6, 0.3]), tmp_path / "pairs.png",
                           pair_labels=["f0 x f1", "f0 x f2", "f1 x f2"],
                           highlight=["f0 x f2"])
    heatmap = plot_attention(np.random.default_rng(0).random((4, 6)), tmp_path / "heat.png",
                             lengths=np.array([6, 3, 0, 1]))
    for path in (pairs, heatmap):
        assert path.read_bytes()[:8] == PNG_SIGNATURE
    with pytest.raises(ValueError, match="pair_labels"):
        plot_attention(np.ones(3), tmp_path / "x.png")
    with pytest.raises(ValueError, match="2 names for 3 weights"):
        plot_attention(np.ones(3), tmp_path / "x.png", pair_labels=["a", "b"])
    with pytest.raises(ValueError, match=r"lengths must have shape \(4,\)"):
        plot_attention(np.ones((4, 6)), tmp_path / "x.png", lengths=np.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["heat.png", "pairs.png"]
