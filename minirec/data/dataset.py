"""Datasets of named column arrays with labels, seeded mini-batching, and task splits."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np

from ..nn.base import check_positive_int, check_random_state
from .schema import SEQUENCE, Schema


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
    ``info`` records facts about the source (file format, paths, options) for reports.
    """

    name: str
    train: Dataset
    valid: Dataset
    test: Dataset
    vocabularies: dict = field(default_factory=dict)
    truth: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    @property
    def schema(self) -> Schema:
        return self.train.schema

    def select(self, names: Sequence[str]) -> "TaskSplits":
        """Return the same splits restricted to the fields ``names``."""
        return TaskSplits(self.name, self.train.select(names), self.valid.select(names),
                          self.test.select(names), self.vocabularies, self.truth, self.info)

    def without_sequences(self) -> "TaskSplits":
        """Return the splits without behaviour sequences, for models other than DIN."""
        return self.select([f.name for f in self.schema if f.kind != SEQUENCE])


# Helpers shared by the file loaders (MovieLens, Criteo, libFM).

_NUMBER_PATTERNS = {
    "int": re.compile(r"[+-]?[0-9]+"),
    "float": re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"),
}


def check_file(path, *, argument: str = "path") -> Path:
    """Return ``path`` as a Path, raising FileNotFoundError unless it is an existing file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{argument}: file not found: {path}")
    if not path.is_file():
        raise ValueError(f"{argument}: expected a file, got the folder {path}")
    return path


def iter_lines(path: Path, *, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` pairs from 1 with only the terminator removed.

    Only ``\\n`` or ``\\r\\n`` is stripped, so trailing empty fields survive. Empty lines at
    the end of the file are not yielded. An empty line before the last non-empty one is
    yielded, so the caller rejects it like any other malformed line.
    """
    pending: list[tuple[int, str]] = []
    with open(path, encoding=encoding, newline="") as handle:
        try:
            for number, line in enumerate(handle, start=1):
                if line.endswith("\n"):
                    line = line[:-1]
                if line.endswith("\r"):
                    line = line[:-1]
                if not line:
                    pending.append((number, line))
                    continue
                yield from pending
                pending.clear()
                yield number, line
        except UnicodeDecodeError as error:
            raise ValueError(f"{path}: not valid {encoding} text ({error})") from None


def line_error(path, line: int, column: str, value, expected: str) -> ValueError:
    """Return the ValueError for a bad value, naming the file, line, column and value."""
    if isinstance(value, np.generic):
        value = value.item()                      # show '2', not np.str_('2')
    return ValueError(f"{path}, line {line}, column {column!r}: invalid value {value!r}; "
                      f"expected {expected}")


def parse_numbers(strings: Sequence[str], kind: str, *, path, line_numbers, column: str,
                  expected: str | None = None) -> np.ndarray:
    """Convert decimal strings to int64 (``kind="int"``) or float64 (``kind="float"``).

    Only plain ASCII decimals are accepted (no spaces, underscores, ``nan`` or ``inf``,
    which Python's ``int`` and ``float`` would allow). The first invalid entry raises
    ValueError naming ``path``, its line from ``line_numbers``, ``column`` and the value.
    """
    pattern = _NUMBER_PATTERNS[kind]
    dtype = np.int64 if kind == "int" else np.float64
    expected = expected or ("an integer" if kind == "int" else "a decimal number")
    strings = list(strings)
    bad = next((i for i, text in enumerate(strings) if not pattern.fullmatch(text)), None)
    if bad is None:
        try:
            numbers = np.array(strings, dtype=object).astype(dtype).reshape(len(strings))
        except OverflowError:
            bad = next(i for i, text in enumerate(strings) if abs(int(text)) >= 2 ** 63)
        else:
            if kind == "int" or np.isfinite(numbers).all():
                return numbers
            bad = int(np.flatnonzero(~np.isfinite(numbers))[0])    # such as 1e400
    raise line_error(path, int(line_numbers[bad]), column, strings[bad], expected)
