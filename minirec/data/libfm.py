"""libFM text files, as used by the NFM and AFM papers for Frappe and MovieLens tags.

Each line is ``label idx:val idx:val ...``: a label, then one ``index:value`` pair for each
field, separated by spaces. The ``j``-th pair of every line belongs to field ``f<j>``, so
all lines must have the same number of pairs.

Notes
-----
This loader reads one-hot files only: every value must be 1 and is not stored. A pair
with another value raises ValueError rather than being read as a plain id, because an FM
multiplies each embedding by its value and dropping it would change the model. The
published Frappe and MovieLens-tag files are one-hot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..nn.base import check_random_state
from .dataset import Dataset, TaskSplits, check_file, iter_lines, line_error, parse_numbers
from .schema import SPARSE, Field, Schema
from .vocab import Vocabulary

TASKS = ("classification", "regression")
SPLIT_FRACTION = 0.1       # share of the train file given to a missing valid or test split
# A label, then pairs "index:1" (the value may be written 1.0): the shape of published files.
_PLAIN_LINE = re.compile(
    r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?(?:[ \t]+[0-9]+:1(?:\.0*)?)+[ \t]*"
)


@dataclass
class LibFMTable:
    """The rows of one libFM file: ``labels`` float64 (n,), feature ``indices`` int64
    (n, F) with one column per field, and ``lines`` the line number of each row."""

    path: Path
    labels: np.ndarray
    indices: np.ndarray
    lines: np.ndarray

    def __len__(self) -> int:
        return int(self.lines.shape[0])


def read_libfm(path, *, task: str = "classification",
               num_fields: int | None = None) -> LibFMTable:
    """Read a libFM file; labels become 0/1 for classification and stay floats for regression.

    For classification a label must be 1 (also written ``+1``), 0 or -1; 1 maps to 1 and
    the others to 0. ``num_fields`` is the number of pairs every line must have (by
    default, that of the first line).
    """
    _check_task(task)
    path = check_file(path)
    numbered = list(iter_lines(path))
    if not numbered:
        raise ValueError(f"{path} is empty: no data lines found")
    lines = np.array([number for number, _ in numbered], dtype=np.int64)
    texts = [text for _, text in numbered]
    parsed = _parse_plain(texts, num_fields)
    if parsed is None:
        parsed = _parse_checked(path, texts, lines, num_fields)
    labels, indices = parsed

    if task == "classification":
        bad = np.flatnonzero((labels != 1) & (labels != 0) & (labels != -1))
        if bad.size:
            raise line_error(path, lines[bad[0]], "label", texts[bad[0]].split()[0],
                             "1, +1, 0 or -1 for task='classification'")
        labels = (labels == 1).astype(np.float64)
    return LibFMTable(path, labels, indices, lines)


def _parse_plain(texts: list[str], num_fields: int | None):
    """Parse lines of the usual shape (``label idx:1 idx:1 ...``) fast; None if any differs.

    One regular expression checks each whole line, then all numbers are converted at
    once. Lines it does not match go through :func:`_parse_checked`, which accepts the
    same files and names the line and column of any error.
    """
    if not all(_PLAIN_LINE.fullmatch(text) for text in texts):
        return None
    pair_counts = np.array([text.count(":") for text in texts])
    num_fields = num_fields or int(pair_counts[0])
    if (pair_counts != num_fields).any():
        return None
    tokens = " ".join(texts).replace(":", " ").split()
    grid = np.array(tokens, dtype=object).reshape(len(texts), 1 + 2 * num_fields)
    try:
        return grid[:, 0].astype(np.float64), grid[:, 1::2].astype(np.int64)
    except OverflowError:
        return None


def _parse_checked(path: Path, texts: list[str], lines: np.ndarray, num_fields: int | None):
    """Parse line by line and raise ValueError naming the line and column of a bad value."""
    label_text, pair_rows = [], []
    for number, text in zip(lines.tolist(), texts):
        parts = text.split()
        if not parts:
            raise ValueError(f"{path}, line {number}: empty line; expected 'label idx:val ...'")
        if num_fields is None:
            num_fields = len(parts) - 1
            if num_fields == 0:
                raise ValueError(f"{path}, line {number}: no idx:val pairs after the label")
        if len(parts) - 1 != num_fields:
            raise ValueError(f"{path}, line {number}: expected {num_fields} idx:val pairs "
                             f"like the first line, found {len(parts) - 1}")
        label_text.append(parts[0])
        pair_rows.append(parts[1:])

    labels = parse_numbers(label_text, "float", path=path, line_numbers=lines, column="label")
    indices = np.zeros((len(lines), num_fields), dtype=np.int64)
    for j, pairs in enumerate(zip(*pair_rows)):
        column = f"f{j}"
        index_text, value_text = [], []
        for pair, number in zip(pairs, lines):
            index, colon, value = pair.partition(":")
            if not colon:
                raise line_error(path, number, column, pair, "a pair idx:val")
            index_text.append(index)
            value_text.append(value)
        indices[:, j] = parse_numbers(index_text, "int", path=path, line_numbers=lines,
                                      column=column, expected="a non-negative feature index")
        if (indices[:, j] < 0).any():
            row = int(np.flatnonzero(indices[:, j] < 0)[0])
            raise line_error(path, lines[row], column, pairs[row],
                             "a non-negative feature index")
        values = parse_numbers(value_text, "float", path=path, line_numbers=lines,
                               column=column)
        if (values != 1).any():
            row = int(np.flatnonzero(values != 1)[0])
            raise line_error(path, lines[row], column, pairs[row],
                             "the value 1 (only one-hot libFM files are supported)")
    return labels, indices


def load_libfm(train, valid=None, test=None, *, task: str = "classification",
               random_state=0) -> TaskSplits:
    """Load libFM files as a task with one sparse field ``f<j>`` for each pair position.

    Each field's vocabulary is built from the train file's indices at that position, so
    an index first seen in ``valid`` or ``test`` becomes unknown (id 1). A missing
    ``valid`` or ``test`` is cut from the train file: ``floor(n * 0.1)`` rows each, chosen
    by a permutation drawn from ``random_state`` (80/10/10 when both are missing).
    """
    _check_task(task)
    rng = check_random_state(random_state)
    train_table = read_libfm(train, task=task)
    num_fields = train_table.indices.shape[1]
    tables = {name: read_libfm(path, task=task, num_fields=num_fields)
              for name, path in (("valid", valid), ("test", test)) if path is not None}

    n = len(train_table)
    order = rng.permutation(n)
    cut = 0
    parts = {}
    for name in ("valid", "test"):
        if name not in tables:
            size = int(n * SPLIT_FRACTION)
            parts[name] = np.sort(order[cut:cut + size])
            cut += size
    train_rows = np.sort(order[cut:])
    if train_rows.size == 0:
        raise ValueError(f"{train_table.path} has {n} rows, too few to keep a training row")

    names = [f"f{j}" for j in range(num_fields)]
    vocabularies = {name: Vocabulary.build(train_table.indices[train_rows, j], name=name)
                    for j, name in enumerate(names)}
    schema = Schema(Field(name, SPARSE, vocabularies[name].size) for name in names)

    def dataset(table: LibFMTable, rows=slice(None)) -> Dataset:
        columns = {name: vocabularies[name].encode(table.indices[rows, j])
                   for j, name in enumerate(names)}
        return Dataset(schema, columns, table.labels[rows])

    splits = {"train": dataset(train_table, train_rows)}
    for name in ("valid", "test"):
        splits[name] = dataset(tables[name]) if name in tables else dataset(train_table,
                                                                             parts[name])
    info = {"task": task, "num_fields": num_fields,
            "paths": {"train": str(train_table.path),
                      **{name: str(table.path) for name, table in tables.items()}}}
    return TaskSplits("libfm", splits["train"], splits["valid"], splits["test"], vocabularies,
                      info=info)


def _check_task(task) -> None:
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
