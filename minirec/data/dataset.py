"""Datasets of named column arrays with labels, seeded mini-batching, and task splits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Mapping, Sequence

import numpy as np

from ..nn.base import check_positive_int, check_random_state
from .schema import Schema


class Dataset:
    """Columns described by a schema, one label per row, and optional user ids for GAUC.

    Parameters
    ----------
    schema : Schema
    columns : dict of str to ndarray
        Every key of ``schema.batch_keys()``, each with ``n`` rows.
    labels : ndarray (n,)
        0/1 for click tasks, real values for rating tasks.
    groups : ndarray (n,), optional
        The user of each row, for group AUC.
    """

    def __init__(self, schema: Schema, columns: Mapping[str, np.ndarray], labels: np.ndarray,
                 groups: np.ndarray | None = None):
        self.schema = schema
        self.columns = {key: np.asarray(columns[key]) for key in schema.batch_keys()
                        if key in columns}
        self.labels = np.asarray(labels)
        self.groups = None if groups is None else np.asarray(groups)
        n = self.labels.shape[0]
        if self.labels.ndim != 1:
            raise ValueError(f"labels must be one-dimensional, got shape {self.labels.shape}")
        if self.groups is not None and self.groups.shape != (n,):
            raise ValueError(f"groups must have shape ({n},), got {self.groups.shape}")
        if n:
            schema.validate_batch(self.columns, argument="columns")
        else:
            missing = [key for key in schema.batch_keys() if key not in self.columns]
            if missing:
                raise ValueError(f"columns is missing field(s) {missing}")
        for key, column in self.columns.items():
            if column.shape[0] != n:
                raise ValueError(
                    f"column {key!r} has {column.shape[0]} rows but there are {n} labels"
                )

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __repr__(self):
        return f"Dataset({len(self)} rows, fields={[f.name for f in self.schema]})"

    def take(self, indices) -> "Dataset":
        """Return the rows at ``indices`` (an index array or a boolean mask) as a new Dataset."""
        indices = np.asarray(indices)
        columns = {key: column[indices] for key, column in self.columns.items()}
        groups = None if self.groups is None else self.groups[indices]
        return Dataset(self.schema, columns, self.labels[indices], groups)

    def select(self, names: Sequence[str]) -> "Dataset":
        """Return a Dataset holding only the fields ``names`` (sequence lengths follow)."""
        schema = self.schema.select(names)
        columns = {key: self.columns[key] for key in schema.batch_keys()}
        return Dataset(schema, columns, self.labels, self.groups)

    def batch(self, indices) -> dict[str, np.ndarray]:
        """Return the feature dict of the rows at ``indices``."""
        return {key: column[indices] for key, column in self.columns.items()}

    def batches(self, batch_size: int, *, shuffle: bool = False,
                random_state=None) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
        """Yield ``(features, labels)`` mini-batches; the last one may be smaller.

        With ``shuffle``, the row order comes from ``random_state``, so the same seed gives
        the same batches. Without it, consecutive rows are yielded as cheap slices (views).
        """
        batch_size = check_positive_int("batch_size", batch_size)
        n = len(self)
        if shuffle:
            order = check_random_state(random_state).permutation(n)
            for start in range(0, n, batch_size):
                rows = order[start:start + batch_size]
                yield self.batch(rows), self.labels[rows]
        else:
            for start in range(0, n, batch_size):
                rows = slice(start, start + batch_size)
                yield self.batch(rows), self.labels[rows]


@dataclass
class TaskSplits:
    """Train, validation and test datasets of one task, with what built them.

    ``vocabularies`` maps a field name to its vocabulary (see :mod:`minirec.data.vocab`);
    ``truth`` holds, for synthetic worlds, the planted structure a lesson or test checks.
    """

    name: str
    train: Dataset
    valid: Dataset
    test: Dataset
    vocabularies: dict = field(default_factory=dict)
    truth: dict = field(default_factory=dict)

    @property
    def schema(self) -> Schema:
        return self.train.schema

    def select(self, names: Sequence[str]) -> "TaskSplits":
        """Return the same splits restricted to the fields ``names``."""
        return TaskSplits(self.name, self.train.select(names), self.valid.select(names),
                          self.test.select(names), self.vocabularies, self.truth)
