"""Criteo display-advertising logs (the Kaggle challenge layout) as a click task.

A line of ``train.txt`` contains 40 tab-separated columns: the label (0 or 1), 13 integer
counts ``I1`` to ``I13`` and 26 hashed categories ``C1`` to ``C26``. Any count or category
may be empty. The unlabelled ``test.txt`` has the 39 feature columns only. A
comma-separated variant starts with a header naming the columns (``label``, ``I1`` ...
``C26``, and optionally an ``Id`` column, which is not used).

Only the line terminator (``\\n`` or ``\\r\\n``) is removed from a line, so empty fields at
the end of a line are kept. Bad lines raise ValueError naming the file, the line, the
column and the value.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..nn.base import check_positive_int, check_random_state
from .dataset import Dataset, TaskSplits, check_file, iter_lines, line_error, parse_numbers
from .schema import DENSE, SPARSE, Field, Schema
from .vocab import HashedVocabulary, Vocabulary

COUNT_NAMES = tuple(f"I{i}" for i in range(1, 14))
CATEGORY_NAMES = tuple(f"C{i}" for i in range(1, 27))
FEATURE_NAMES = COUNT_NAMES + CATEGORY_NAMES
_CHUNK_ROWS = 65536            # rows gathered as Python lists before conversion to arrays


@dataclass
class CriteoTable:
    """The raw columns of a Criteo file.

    - ``labels``: float64 (n,) of 0/1, or None for an unlabelled file.
    - ``counts``: int64 (n, 13), 0 where missing; ``count_missing``: bool (n, 13).
    - ``categories``: str (n, 26), ``""`` where missing.
    - ``lines``: the line number of each row.
    """

    path: Path
    labels: np.ndarray | None
    counts: np.ndarray
    count_missing: np.ndarray
    categories: np.ndarray
    lines: np.ndarray

    def __len__(self) -> int:
        return int(self.lines.shape[0])


def read_criteo(path, *, max_rows: int | None = None) -> CriteoTable:
    """Read a Criteo file (tab-separated, or comma-separated with a header).

    ``max_rows`` stops after that many data lines. The layout is taken from the first
    line: a header if it names ``I1`` and ``C1``, else 40 columns (labelled) or 39
    (unlabelled test file).
    """
    path = check_file(path)
    if max_rows is not None:
        max_rows = check_positive_int("max_rows", max_rows)
    rows = _iter_rows(path)
    first = next(rows, None)
    if first is None:
        raise ValueError(f"{path} is empty: no data lines found")
    positions, has_header = _layout(path, *first)
    width = len(first[1])
    if not has_header:
        rows = _chain(first, rows)

    chunks, chunk, count = [], [], 0
    for number, fields in rows:
        if max_rows is not None and count == max_rows:
            break
        if len(fields) != width:
            raise ValueError(f"{path}, line {number}: expected {width} columns like line "
                             f"{first[0]}, found {len(fields)}")
        chunk.append((number, fields))
        count += 1
        if len(chunk) == _CHUNK_ROWS:
            chunks.append(_convert(path, chunk, positions, width))
            chunk = []
    if chunk or not chunks:
        chunks.append(_convert(path, chunk, positions, width))
    lines, labels, counts, missing, categories = (np.concatenate(parts) for parts in zip(*chunks))
    return CriteoTable(path, labels if "label" in positions else None, counts, missing,
                       categories, lines)


def _chain(first, rows):
    yield first
    yield from rows


def _iter_rows(path: Path):
    """Yield ``(line_number, fields)``; the separator is a tab unless the first line has none."""
    with open(path, "rb") as handle:
        first_line = handle.readline()
    if b"\t" in first_line or b"," not in first_line:
        for number, line in iter_lines(path):
            yield number, line.split("\t")
        return
    pending = []
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        try:
            for fields in reader:
                if not fields:                  # blank lines are accepted only at the end
                    pending.append(reader.line_num)
                    continue
                for number in pending:
                    yield number, [""]
                pending.clear()
                yield reader.line_num, fields
        except csv.Error as error:
            raise ValueError(f"{path}, line {reader.line_num}: malformed CSV ({error})") from None
        except UnicodeDecodeError as error:
            raise ValueError(f"{path}: not valid utf-8 text ({error})") from None


def _layout(path: Path, number: int, fields: list[str]) -> tuple[dict, bool]:
    """Return the column of ``label`` and of each feature, and whether ``fields`` is a header."""
    if "I1" in fields and "C1" in fields:
        positions = {}
        for position, name in enumerate(fields):
            key = name.lower() if name.lower() in ("label", "id") else name
            if key not in FEATURE_NAMES + ("label", "id"):
                raise ValueError(f"{path}, line {number}: unexpected column {name!r} in the "
                                 "header; expected label, I1-I13, C1-C26 and optionally Id")
            if key in positions:
                raise ValueError(f"{path}, line {number}: column {name!r} appears twice")
            positions[key] = position
        missing = [name for name in FEATURE_NAMES if name not in positions]
        if missing:
            raise ValueError(f"{path}, line {number}: the header lacks column(s) {missing}")
        positions.pop("id", None)
        return positions, True
    if len(fields) == 40:
        return {"label": 0, **{name: i + 1 for i, name in enumerate(FEATURE_NAMES)}}, False
    if len(fields) == 39:
        return {name: i for i, name in enumerate(FEATURE_NAMES)}, False
    raise ValueError(f"{path}, line {number}: expected 40 columns (label, I1-I13, C1-C26) or "
                     f"39 (an unlabelled test file), found {len(fields)}")


def _convert(path: Path, chunk, positions: dict, width: int):
    """Turn a list of ``(line_number, fields)`` rows into checked NumPy arrays."""
    lines = np.array([number for number, _ in chunk], dtype=np.int64)
    table = np.array([fields for _, fields in chunk], dtype=str).reshape(len(chunk), width)

    labels = np.zeros(len(chunk), dtype=np.float64)
    if "label" in positions:
        text = table[:, positions["label"]]
        bad = np.flatnonzero((text != "0") & (text != "1"))
        if bad.size:
            raise line_error(path, lines[bad[0]], "label", text[bad[0]], "0 or 1")
        labels = (text == "1").astype(np.float64)

    count_text = table[:, [positions[name] for name in COUNT_NAMES]]      # (c, 13)
    missing = count_text == ""
    counts = np.zeros(count_text.shape, dtype=np.int64)
    for j, name in enumerate(COUNT_NAMES):
        present = ~missing[:, j]
        counts[present, j] = parse_numbers(count_text[present, j].tolist(), "int", path=path,
                                           line_numbers=lines[present], column=name,
                                           expected="an integer count or an empty field")
    categories = table[:, [positions[name] for name in CATEGORY_NAMES]]   # (c, 26)
    return lines, labels, counts, missing, categories


def log_counts(counts, missing=None) -> np.ndarray:
    """Return ``log1p(max(x, 0))`` of the integer counts, with 0 where a count is missing."""
    counts = np.asarray(counts)
    dense = np.log1p(np.maximum(counts, 0).astype(np.float64))
    if missing is not None:
        dense[np.asarray(missing, dtype=bool)] = 0.0
    return dense


def criteo_schema(vocabularies: dict) -> Schema:
    """Return the schema: dense ``I1``..``I13``, then sparse ``C1``..``C26``."""
    fields = [Field(name, DENSE) for name in COUNT_NAMES]
    fields += [Field(name, SPARSE, vocabularies[name].size) for name in CATEGORY_NAMES]
    return Schema(fields)


def encode_criteo(table: CriteoTable, vocabularies: dict) -> dict[str, np.ndarray]:
    """Return the feature columns of ``table`` encoded with ``vocabularies`` (of C1..C26).

    Works for the unlabelled test file too, with the vocabularies of a labelled one.
    """
    dense = log_counts(table.counts, table.count_missing)                 # (n, 13)
    columns = {name: dense[:, j] for j, name in enumerate(COUNT_NAMES)}
    for j, name in enumerate(CATEGORY_NAMES):
        columns[name] = vocabularies[name].encode(table.categories[:, j])
    return columns


def load_criteo(path, *, valid_fraction: float = 0.1, test_fraction: float = 0.1,
                random_state=0, min_count: int = 1, num_buckets: int | None = None,
                max_rows: int | None = None) -> TaskSplits:
    """Read a labelled Criteo file and split its rows at random into train, valid and test.

    ``floor(n * test_fraction)`` rows go to test and ``floor(n * valid_fraction)`` to
    validation, chosen by a permutation drawn from ``random_state``; each split keeps file
    order. Categories are encoded by one :class:`Vocabulary` a field built on the training
    rows (values rarer than ``min_count`` become unknown), or, with ``num_buckets``, by a
    :class:`HashedVocabulary` of that many buckets. Counts become ``log1p(max(x, 0))``.
    """
    for name, value in (("valid_fraction", valid_fraction), ("test_fraction", test_fraction)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    if valid_fraction + test_fraction >= 1:
        raise ValueError(f"valid_fraction + test_fraction must be below 1, got "
                         f"{valid_fraction} + {test_fraction}")
    min_count = check_positive_int("min_count", min_count)
    if num_buckets is not None:
        num_buckets = check_positive_int("num_buckets", num_buckets)
        if min_count != 1:
            raise ValueError(f"min_count={min_count} cannot be combined with num_buckets: "
                             "a hashed vocabulary keeps no counts; pass min_count=1")
    rng = check_random_state(random_state)

    table = read_criteo(path, max_rows=max_rows)
    if table.labels is None:
        raise ValueError(f"{table.path} has no label column (39 columns); load a labelled "
                         "file, then encode this one with encode_criteo and its vocabularies")
    n = len(table)
    num_test, num_valid = int(n * test_fraction), int(n * valid_fraction)
    if n - num_test - num_valid < 1:
        raise ValueError(f"{table.path} has {n} rows, too few to keep a training row")
    order = rng.permutation(n)
    test_rows = np.sort(order[:num_test])
    valid_rows = np.sort(order[num_test:num_test + num_valid])
    train_rows = np.sort(order[num_test + num_valid:])

    vocabularies = {}
    for j, name in enumerate(CATEGORY_NAMES):
        if num_buckets is None:
            vocabularies[name] = Vocabulary.build(table.categories[train_rows, j],
                                                  min_count=min_count, name=name)
        else:
            vocabularies[name] = HashedVocabulary(num_buckets, name=name)
    everything = Dataset(criteo_schema(vocabularies), encode_criteo(table, vocabularies),
                         table.labels)
    info = {"path": str(table.path), "rows": n, "min_count": min_count,
            "num_buckets": num_buckets, "valid_fraction": valid_fraction,
            "test_fraction": test_fraction}
    return TaskSplits("criteo", everything.take(train_rows), everything.take(valid_rows),
                      everything.take(test_rows), vocabularies, info=info)
