"""The training loop: seeded mini-batch epochs, validation, early stopping, final test.

One epoch shuffles the training split with the run's generator and, for every mini-batch,

1. zeroes the gradients,
2. runs the model forward to logits,
3. computes the loss (binary cross-entropy on logits for click tasks, mean squared error
   for rating tasks),
4. runs the loss and the model backward (and a regularizer, if one was given),
5. checks that the loss and every gradient are finite,
6. lets the optimizer update the parameters.

After each epoch the whole validation split is scored in evaluation mode. The weights of the
epoch with the best validation score (AUC for clicks, RMSE for ratings) are kept, training
stops after ``patience`` epochs without improvement, and the kept weights are loaded back
before the test split is scored once. The test split never takes part in any choice.
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .data.dataset import Dataset, TaskSplits
from .i18n import message
from .nn.activations import sigmoid
from .nn.base import Module, SparseGrad, check_positive_int, check_random_state
from .optim import Optimizer

CLICK = "click"
RATING = "rating"
OPTIMIZERS = ("adam", "adagrad", "sgd")
EVAL_BATCH_SIZE = 4096

# Without a terminal, a progress line is written at most this often (seconds), so a log
# file gets a few lines for a long epoch and none for an epoch of a second or two.
LOG_PROGRESS_INTERVAL = 10.0
# On a terminal the progress line is rewritten in place at most this often (seconds).
TTY_PROGRESS_INTERVAL = 0.2


class TrainingError(FloatingPointError):
    """Raised when a loss or a gradient is not finite, before the optimizer step.

    Attributes ``epoch`` and ``step`` (both counted from 1) locate the step, and ``quantity``
    names what was not finite: ``"model output"``, ``"loss"`` or ``"gradient of <dotted
    parameter name>"``.
    """

    def __init__(self, epoch: int, step: int, quantity: str, detail: str = "", *,
                 step_applied: bool = False):
        self.epoch = epoch
        self.step = step
        self.quantity = quantity
        text = f"non-finite {quantity} at epoch {epoch}, step {step}"
        if detail:
            text += f" ({detail})"
        if not step_applied:
            text += "; no parameter was changed by this step"
        text += ". Try a smaller learning rate or check the input data for extreme values."
        super().__init__(text)


@dataclass
class TrainResult:
    """Result of :func:`fit`.

    ``history`` has one dict per epoch run. ``valid`` contains the validation metrics of the
    best epoch (whose weights ``model`` now has) and ``test`` the test metrics of those
    weights. ``train_seconds`` counts only the training passes (not evaluation), and
    ``examples_per_second`` is the number of training examples processed divided by it.
    """

    history: list[dict]
    best_epoch: int
    valid: dict
    test: dict
    train_seconds: float
    examples_per_second: float
    model: Module
    task: str = CLICK
    stopped_early: bool = False

    def to_dict(self) -> dict:
        """Return the result without the model, as JSON-ready data."""
        return {
            "task": self.task,
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
            "epochs_run": len(self.history),
            "valid": dict(self.valid),
            "test": dict(self.test),
            "train_seconds": self.train_seconds,
            "examples_per_second": self.examples_per_second,
            "history": [dict(entry) for entry in self.history],
        }


# --------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------

def predict_logits(model, dataset: Dataset, *, batch_size: int = EVAL_BATCH_SIZE) -> np.ndarray:
    """Return the model's outputs (logits, or ratings for a rating model) for every row.

    The model runs in evaluation mode (no dropout, running statistics) and is put back in
    the mode it was in.
    """
    batch_size = check_positive_int("batch_size", batch_size)
    was_training = model.training
    model.eval()
    try:
        outputs = [np.asarray(model.forward(features), dtype=np.float64)
                   for features, _ in dataset.batches(batch_size)]
    finally:
        if was_training:
            model.train()
    if not outputs:
        return np.zeros(0)
    return np.concatenate(outputs)


def predict(model, dataset: Dataset, *, batch_size: int = EVAL_BATCH_SIZE) -> np.ndarray:
    """Return click probabilities ``sigmoid(logits)`` (B,) for every row of ``dataset``."""
    return sigmoid(predict_logits(model, dataset, batch_size=batch_size))


def infer_task(labels: np.ndarray) -> str:
    """Return ``"click"`` when every label is 0 or 1, else ``"rating"``."""
    labels = np.asarray(labels)
    if labels.size and np.all((labels == 0) | (labels == 1)):
        return CLICK
    return RATING if labels.size else CLICK


def evaluate(model, dataset: Dataset, batch_size: int = EVAL_BATCH_SIZE, *,
             task: str | None = None) -> dict:
    """Score ``model`` on the whole of ``dataset`` in evaluation mode.

    For a click task the result contains ``loss`` (mean binary cross-entropy computed from the
    logits), ``auc``, ``logloss`` (from the probabilities, clipped as
    :func:`minirec.metrics.log_loss` does) and, when the dataset has groups and some group
    has both classes, ``gauc``. AUC is NaN when the labels contain only one class. For a rating task it contains
    ``loss`` (mean squared error), ``rmse`` and ``mae``. Raises FloatingPointError when
    an output is NaN or infinite.
    """
    from . import metrics
    from .nn.losses import bce_with_logits

    if len(dataset) == 0:
        raise ValueError("cannot evaluate on an empty dataset")
    task = infer_task(dataset.labels) if task is None else _check_task(task)
    labels = np.asarray(dataset.labels, dtype=np.float64)
    outputs = predict_logits(model, dataset, batch_size=batch_size)
    non_finite = int(np.count_nonzero(~np.isfinite(outputs)))
    if non_finite:
        raise FloatingPointError(f"the model's outputs are NaN or infinite on {non_finite} of "
                                 f"{outputs.size} rows; its weights or the inputs are not finite")

    if task == RATING:
        errors = outputs - labels
        mse = float(np.mean(errors ** 2))
        return {"loss": mse, "rmse": float(np.sqrt(mse)), "mae": float(np.mean(np.abs(errors)))}

    result = {"loss": float(np.mean(bce_with_logits(outputs, labels)))}
    if np.unique(labels).size == 2:
        # AUC ranks the logits: a sigmoid would round large logits to 1.0 and tie them.
        scores = metrics.evaluate(labels, outputs, dataset.groups, from_logits=True)
    else:
        scores = {"auc": float("nan"),
                  "logloss": float(metrics.log_loss(labels, sigmoid(outputs)))}
    result.update({key: float(value) for key, value in scores.items()})
    return result


def _check_task(task: str) -> str:
    if task not in (CLICK, RATING):
        raise ValueError(f"task must be 'click' or 'rating', got {task!r}")
    return task


def _selection_score(task: str, metrics: dict) -> float:
    """Return the validation score to maximise: AUC, or minus the RMSE for ratings."""
    return metrics["auc"] if task == CLICK else -metrics["rmse"]


# --------------------------------------------------------------------------------------
# Setup helpers
# --------------------------------------------------------------------------------------

def make_optimizer(name: str, model, lr: float):
    """Build the optimizer ``name`` (adam, adagrad or sgd) over ``model``'s parameters."""
    from . import optim

    classes = {"adam": optim.Adam, "adagrad": optim.Adagrad, "sgd": optim.SGD}
    if name not in classes:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)} or an optimizer "
                         f"object, got {name!r}")
    return classes[name](model, lr=lr)


def _make_loss(task: str):
    from .nn.losses import BCEWithLogitsLoss, MSELoss

    return BCEWithLogitsLoss() if task == CLICK else MSELoss()


def _step_checked(optimizer, epoch: int, step: int, out) -> None:
    """Run ``optimizer.step()``, turning its non-finite gradient error into a TrainingError."""
    try:
        optimizer.step()
    except FloatingPointError as error:
        out.end_progress()
        match = re.search(r"parameter '([^']+)'", str(error))
        quantity = f"gradient of {match[1]}" if match else "gradient"
        raise TrainingError(epoch, step, quantity, "the optimizer found it before updating") \
            from error


def _first_non_finite_grad(model) -> tuple[str, str] | None:
    """Return (parameter name, description) of the first gradient containing NaN or inf."""
    for name, _, grad in model.parameters():
        if isinstance(grad, SparseGrad):
            rows, values = grad.coalesce()
            bad = ~np.isfinite(values)
            if bad.any():
                row = int(rows[np.argwhere(bad)[0][0]])
                return name, f"gradient of {name} row {row}"
        else:
            bad = ~np.isfinite(grad)
            if bad.any():
                index = tuple(int(i) for i in np.argwhere(bad)[0])
                return name, f"gradient of {name} entry {index}"
    return None


class _Log:
    """Writes lines (and, on a terminal, a progress line rewritten in place)."""

    def __init__(self, log, verbose: bool):
        self.verbose = verbose
        if log is None:
            log = sys.stdout
        self.stream = None
        self.callable = None
        if callable(log) and not hasattr(log, "write"):
            self.callable = log
        elif hasattr(log, "write"):
            self.stream = log
        else:
            raise TypeError(f"log must be a callable or a stream with write(), "
                            f"got {type(log).__name__}")
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(self.stream is not None and isatty is not None and isatty())
        self.pending = False

    def line(self, text: str) -> None:
        if not self.verbose:
            return
        if self.callable is not None:
            self.callable(text)
            return
        if self.pending:
            self.stream.write("\r\x1b[K")
            self.pending = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def progress(self, text: str) -> None:
        if not self.verbose:
            return
        if self.tty:
            self.stream.write("\r\x1b[K" + text)
            self.stream.flush()
            self.pending = True
        else:
            self.line(text)

    def end_progress(self) -> None:
        """End a progress line left open on a terminal, so an error starts on a new line."""
        if self.pending:
            self.stream.write("\n")
            self.stream.flush()
            self.pending = False

    def progress_interval(self) -> float:
        return TTY_PROGRESS_INTERVAL if self.tty else LOG_PROGRESS_INTERVAL


# --------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------

def fit(model, splits: TaskSplits, *, optimizer="adam", lr: float = 1e-3, epochs: int = 10,
        batch_size: int = 256, patience: int | None = 2, random_state=0,
        verbose: bool = True, regularizer=None, log: Callable | object | None = None,
        task: str | None = None, eval_batch_size: int = EVAL_BATCH_SIZE,
        lang: str = "en") -> TrainResult:
    """Train ``model`` on ``splits.train``, choosing the epoch by ``splits.valid``.

    Parameters
    ----------
    model : Model
        Any module with ``forward(batch) -> (B,)`` and ``backward(dlogits)``.
    splits : TaskSplits
        Train, validation and test datasets. Only the validation split steers training
        (early stopping and the choice of weights); the test split is scored once, at the end.
    optimizer : {"adam", "adagrad", "sgd"} or optimizer object
        An object needs ``zero_grad()`` and ``step()`` over ``model``'s parameters; ``lr``
        is then ignored.
    lr : float
        Learning rate of an optimizer built from its name.
    epochs : int
        Maximum number of passes over the training split.
    batch_size : int
        Training mini-batch size; the last batch of an epoch may be smaller.
    patience : int or None
        Stop after this many epochs in a row without a better validation score (AUC for
        clicks, RMSE for ratings). None trains all ``epochs``. The best epoch's weights are
        restored at the end either way.
    random_state : None, int or Generator
        Source of the shuffling order of every epoch.
    verbose : bool
        Write a progress line during each epoch and a summary line after it.
    regularizer : object, optional
        Its ``apply(model)`` runs after each backward pass and before the step, adding its
        gradient (for example :class:`minirec.optim.MiniBatchAwareL2`).
    log : callable or stream, optional
        Where lines go: a function taking one line of text, or a stream such as
        ``sys.stderr`` (default ``sys.stdout``). On a terminal the progress line is
        rewritten in place with a carriage return.
    task : {"click", "rating"}, optional
        Binary cross-entropy with AUC (click) or mean squared error with RMSE (rating).
        By default a click task when every training label is 0 or 1.
    eval_batch_size : int
        Batch size of evaluation passes; it changes speed and memory, not the metrics.
    lang : {"en", "zh"}
        Language of the lines written to ``log``.

    Returns
    -------
    TrainResult

    Raises
    ------
    TrainingError
        At the first non-finite model output, loss or gradient, before that step updates
        any parameter; or when the validation outputs are not finite after an epoch (an
        update made the weights overflow).
    """
    epochs = check_positive_int("epochs", epochs)
    batch_size = check_positive_int("batch_size", batch_size)
    if patience is not None:
        patience = check_positive_int("patience", patience)
    if not isinstance(splits, TaskSplits):
        raise TypeError(f"splits must be a TaskSplits, got {type(splits).__name__}")
    if len(splits.train) == 0:
        raise ValueError("the training split is empty")
    if len(splits.valid) == 0:
        raise ValueError("the validation split is empty; early stopping needs one")
    task = infer_task(splits.train.labels) if task is None else _check_task(task)
    if task == CLICK and np.unique(splits.valid.labels).size < 2:
        raise ValueError("the validation split contains only one class, so its AUC is undefined "
                         "and cannot choose the epoch")
    if isinstance(optimizer, str):
        optimizer = make_optimizer(optimizer, model, lr)
    elif not (hasattr(optimizer, "step") and hasattr(optimizer, "zero_grad")):
        raise TypeError(f"optimizer must be one of {', '.join(OPTIMIZERS)} or an object with "
                        f"step() and zero_grad(), got {type(optimizer).__name__}")
    if regularizer is not None and not hasattr(regularizer, "apply"):
        raise TypeError(f"regularizer needs an apply(model) method, "
                        f"got {type(regularizer).__name__}")
    out = _Log(log, verbose)
    rng = check_random_state(random_state)
    # minirec's optimizers check every gradient before changing anything, so the loop
    # skips its own check for them (it would coalesce every sparse gradient a second time).
    checks_gradients = isinstance(optimizer, Optimizer)
    loss_fn = _make_loss(task)
    dtype = getattr(model, "dtype", np.float64)
    n_train = len(splits.train)

    history: list[dict] = []
    best_score = -np.inf
    best_epoch = 0
    best_state = None
    best_valid: dict = {}
    epochs_without_improvement = 0
    train_seconds = 0.0
    examples_seen = 0
    stopped_early = False

    for epoch in range(1, epochs + 1):
        model.train()
        started = time.perf_counter()
        last_report = started
        loss_sum = 0.0
        done = 0
        for step, (features, labels) in enumerate(
                splits.train.batches(batch_size, shuffle=True, random_state=rng), start=1):
            labels = labels.astype(dtype, copy=False)

            # 1-2. fresh gradients, forward
            optimizer.zero_grad()
            outputs = model.forward(features)

            # 3. loss, checked before anything flows back
            if not np.all(np.isfinite(outputs)):
                out.end_progress()
                row = int(np.flatnonzero(~np.isfinite(outputs))[0])
                raise TrainingError(epoch, step, "model output",
                                    f"row {row} of the batch is {outputs[row]}")
            loss = float(loss_fn.forward(outputs, labels))
            if not np.isfinite(loss):
                out.end_progress()
                raise TrainingError(epoch, step, "loss", f"loss = {loss}")

            # 4. backward and regularizer
            model.backward(loss_fn.backward())
            if regularizer is not None:
                regularizer.apply(model)

            # 5-6. every gradient must be finite before the step touches a parameter
            if checks_gradients:
                _step_checked(optimizer, epoch, step, out)
            else:
                bad = _first_non_finite_grad(model)
                if bad is not None:
                    out.end_progress()
                    raise TrainingError(epoch, step, f"gradient of {bad[0]}", bad[1])
                optimizer.step()

            rows = len(labels)
            loss_sum += loss * rows
            done += rows
            now = time.perf_counter()
            if out.verbose and now - last_report >= out.progress_interval():
                last_report = now
                out.progress(message("train.progress", lang, epoch=epoch, epochs=epochs,
                                     done=done, total=n_train,
                                     speed=done / max(now - started, 1e-9),
                                     loss=loss_sum / done))
        seconds = time.perf_counter() - started
        train_seconds += seconds
        examples_seen += done

        # validation, in evaluation mode, on the whole split
        try:
            valid = evaluate(model, splits.valid, eval_batch_size, task=task)
        except FloatingPointError as error:
            out.end_progress()
            raise TrainingError(epoch, step, "validation output", str(error),
                                step_applied=True) from error
        entry = {"epoch": epoch, "train_loss": loss_sum / done, "seconds": seconds}
        entry.update({f"valid_{key}": value for key, value in valid.items()})
        history.append(entry)

        score = _selection_score(task, valid)
        improved = bool(score > best_score)
        if improved:
            best_score = score
            best_epoch = epoch
            best_state = model.state_dict()
            best_valid = valid
            epochs_without_improvement = 0
        else:
            epochs_without_improvement += 1
        out.line(_epoch_summary(task, entry, epochs, improved, lang))

        if patience is not None and epochs_without_improvement >= patience and epoch < epochs:
            stopped_early = True
            out.line(message("train.early_stop", lang, patience=patience,
                             metric=_metric_label(task)))
            break

    if best_state is not None:
        model.load_state_dict(best_state)
    if best_epoch != len(history):
        out.line(message("train.restored", lang, epoch=best_epoch))

    # The test split is scored once, with the weights the validation split chose.
    test = evaluate(model, splits.test, eval_batch_size, task=task) if len(splits.test) else {}
    if test:
        out.line(_test_summary(task, test, lang))
    model.eval()
    speed = examples_seen / train_seconds if train_seconds > 0 else float("inf")
    return TrainResult(history=history, best_epoch=best_epoch, valid=best_valid, test=test,
                       train_seconds=train_seconds, examples_per_second=speed, model=model,
                       task=task, stopped_early=stopped_early)


def _metric_label(task: str) -> str:
    return "AUC" if task == CLICK else "RMSE"


def _epoch_summary(task: str, entry: dict, epochs: int, improved: bool, lang: str) -> str:
    mark = message("train.best_mark", lang) if improved else ""
    if task == CLICK:
        return message("train.epoch_click", lang, epochs=epochs, mark=mark, **entry)
    return message("train.epoch_rating", lang, epochs=epochs, mark=mark, **entry)


def _test_summary(task: str, test: dict, lang: str) -> str:
    if task == RATING:
        return message("train.test_rating", lang, **test)
    text = message("train.test_click", lang, **test)
    if "gauc" in test:
        text += message("train.test_gauc", lang, gauc=test["gauc"])
    return text
