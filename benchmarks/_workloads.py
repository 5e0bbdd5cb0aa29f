"""Tasks, models, fixed mini-batches and the timed minirec training step of the benchmarks.

Import this module only after :func:`_setup.set_threads`, because it imports NumPy.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from minirec.data.movielens import movielens_click_task
from minirec.data.synthetic import WORLDS
from minirec.models.base import get_model_class
from minirec.nn.losses import BCEWithLogitsLoss
from minirec.optim import Adam

MODELS = ("deepfm", "afm", "din")
LEARNING_RATE = 1e-3

# Synthetic worlds sized so that the embedding tables are not trivially small. The click
# world serves the models without sequences; the interest world has behaviour sequences.
SYNTHETIC_FULL = {
    "click": dict(n_samples=60_000, n_fields=8, vocab_size=2_000, random_state=0),
    "interest": dict(n_users=1_500, n_items=5_000, n_categories=40, max_len=50,
                     impressions_per_user=40, random_state=0),
}
SYNTHETIC_QUICK = {
    "click": dict(n_samples=3_000, n_fields=6, vocab_size=200, random_state=0),
    "interest": dict(n_users=100, n_items=300, n_categories=10, max_len=20,
                     impressions_per_user=20, random_state=0),
}


def load_movielens(path) -> object | None:
    """Return the MovieLens click task of ``path``, or None if the folder does not exist."""
    if not Path(path).is_dir():
        return None
    return movielens_click_task(path)


def synthetic_task(model_name: str, *, quick: bool):
    """Return the synthetic world for ``model_name``, or None if it is not registered.

    DIN needs behaviour sequences, so it gets the "interest" world; the other models get
    the "click" world.
    """
    sizes = SYNTHETIC_QUICK if quick else SYNTHETIC_FULL
    world = "interest" if model_name == "din" else "click"
    if world not in WORLDS:
        return None
    return WORLDS[world](**sizes[world])


def task_for_model(splits, model_name: str):
    """Return ``splits`` as the model reads it: without sequences except for DIN."""
    if model_name == "din":
        return splits
    return splits.without_sequences()


def build_model(model_name: str, schema, dtype, *, random_state=0, **config):
    """Build the minirec model registered as ``model_name`` with its default sizes."""
    model_class = get_model_class(model_name)
    return model_class(schema, random_state=random_state, dtype=dtype, **config)


def fixed_batches(dataset, batch_size: int, count: int, *, random_state=0, dtype=np.float32):
    """Return ``count`` shuffled mini-batches ``(features, labels)`` of exactly ``batch_size`` rows.

    The epoch is repeated if it has fewer rows than ``count * batch_size``. Labels are cast
    to ``dtype`` so that neither side pays for the cast inside the timed step.
    """
    rng = np.random.default_rng(random_state)
    n = len(dataset)
    if n < batch_size:
        raise ValueError(f"dataset has {n} rows, fewer than batch_size={batch_size}")
    batches = []
    order = rng.permutation(n)
    start = 0
    while len(batches) < count:
        if start + batch_size > n:
            order = rng.permutation(n)
            start = 0
        rows = np.sort(order[start:start + batch_size])
        start += batch_size
        features = {key: np.ascontiguousarray(value)
                    for key, value in dataset.batch(rows).items()}
        batches.append((features, dataset.labels[rows].astype(dtype)))
    return batches


class MinirecTrainer:
    """One training step of a minirec model: zero, forward, BCE loss, backward, Adam step."""

    def __init__(self, model, *, lr=LEARNING_RATE):
        self.model = model
        self.loss = BCEWithLogitsLoss()
        self.optimizer = Adam(model, lr=lr)

    def step(self, features, labels) -> float:
        self.optimizer.zero_grad()
        logits = self.model.forward(features)
        value = self.loss.forward(logits, labels)
        self.model.backward(self.loss.backward())
        self.optimizer.step()
        return value


def time_interleaved(steps: dict, batches) -> dict[str, tuple[float, float]]:
    """Run every ``steps[side](features, labels)`` on each batch in turn; return the seconds.

    The sides alternate batch by batch, so a change in the load of a shared machine
    falls on all of them alike. Returns ``{side: (wall, cpu)}`` summed over the batches;
    CPU time is this process's, all threads included.
    """
    totals = {side: [0.0, 0.0] for side in steps}
    for features, labels in batches:
        for side, step in steps.items():
            wall, cpu = time.perf_counter(), time.process_time()
            step(features, labels)
            totals[side][0] += time.perf_counter() - wall
            totals[side][1] += time.process_time() - cpu
    return {side: (wall, cpu) for side, (wall, cpu) in totals.items()}


def median(values) -> float:
    return float(statistics.median(values))
