"""Vocabularies that map raw values (user ids, genres, Criteo hashes) to integer ids.

Every vocabulary reserves two ids:

- ``PAD = 0`` pads multi-valued fields and behaviour sequences;
- ``UNK = 1`` stands for a missing value (``None``, ``""`` or a float NaN), a value never
  seen when the vocabulary was built, or a value rarer than ``min_count``.

Known values get ids from 2 on. A vocabulary is built from training data only, so
validation and test rows with new values receive the unknown id.

Values are keyed by their string form ``str(value)``: the integer 7 and the string ``"7"``
are the same value, and NumPy integer arrays are converted with ``astype(str)``. Ids are
assigned by descending count, and ties are broken by the string order of the values
(``"10"`` comes before ``"9"``). Neither Python's ``hash()`` nor set order is involved,
so the same training data gives the same ids in every process.

:class:`HashedVocabulary` is the alternative for very large vocabularies: it stores no
values and maps each value to ``2 + crc32(utf8(str(value))) % num_buckets``.
"""

from __future__ import annotations

import zlib

import numpy as np

PAD = 0
UNK = 1
NUM_RESERVED = 2
PAD_TOKEN = "<pad>"
UNK_TOKEN = "<unk>"


def to_keys(values) -> tuple[np.ndarray, np.ndarray]:
    """Return the string keys of ``values`` and a mask of missing entries, both flat.

    Missing entries are ``None``, the empty string and float NaN; their key is ``""``.
    """
    if isinstance(values, (set, frozenset, dict)) or (
            not isinstance(values, (np.ndarray, list, tuple, str, bytes))
            and hasattr(values, "__iter__")):
        values = list(values)          # a set or generator would become a 0-d object array
    array = np.asarray(values)
    if array.dtype.kind in "iub":
        return array.reshape(-1).astype(str), np.zeros(array.size, dtype=bool)
    if array.dtype.kind == "f":
        flat = array.reshape(-1)
        missing = np.isnan(flat)
        keys = flat.astype(str)
        keys[missing] = ""
        return keys, missing
    if array.dtype.kind in "US":
        keys = array.reshape(-1).astype(str)
        return keys, keys == ""
    if array.dtype.kind == "O":
        flat = array.reshape(-1)
        keys = np.array([_object_key(v) for v in flat], dtype=str)
        if keys.size == 0:
            keys = np.zeros(0, dtype="<U1")
        return keys, keys == ""
    raise TypeError(
        f"values must be integers, floats or strings, got an array of dtype {array.dtype}"
    )


def _object_key(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (float, np.floating)) and np.isnan(value):
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)


def _check_min_count(min_count) -> int:
    if isinstance(min_count, bool) or not isinstance(min_count, (int, np.integer)) \
            or min_count < 1:
        raise ValueError(f"min_count must be a positive integer, got {min_count!r}")
    return int(min_count)


class Vocabulary:
    """Map values to ids: 0 padding, 1 unknown, known values from 2 in descending count.

    Parameters
    ----------
    values : sequence of str
        The known values in id order: ``values[i]`` gets id ``i + 2``. Usually built by
        :meth:`build` rather than given by hand.
    counts : sequence of int, optional
        How often each value occurred in the data the vocabulary was built on.
    min_count : int
        The threshold :meth:`build` applied (kept for checkpoints and reports).
    name : str, optional
        The field the vocabulary belongs to, used in messages.
    """

    def __init__(self, values=(), counts=None, *, min_count: int = 1, name: str | None = None):
        keys, missing = to_keys(np.asarray(list(values), dtype=object))
        if missing.any():
            raise ValueError(
                f"vocabulary {name!r}: known values must not be missing (None, '' or NaN); "
                f"found one at position {int(np.flatnonzero(missing)[0])}"
            )
        unique_keys, first, repeats = np.unique(keys, return_index=True, return_counts=True)
        if (repeats > 1).any():
            raise ValueError(
                f"vocabulary {name!r}: known values must be unique; repeated: "
                f"{unique_keys[repeats > 1][:5].tolist()}"
            )
        if counts is None:
            counts = np.zeros(len(keys), dtype=np.int64)
        counts = np.asarray(counts, dtype=np.int64).reshape(-1)
        if counts.shape != keys.shape:
            raise ValueError(
                f"vocabulary {name!r}: counts has {counts.size} entries for {keys.size} values"
            )
        self.name = name
        self.min_count = _check_min_count(min_count)
        self.values = keys                                  # id order: values[i] has id i + 2
        self.counts = counts
        # Sorted copy for binary search: sorted_keys[j] has id sorted_ids[j].
        self._sorted_keys = unique_keys
        self._sorted_ids = first.astype(np.int64) + NUM_RESERVED
        self._decode_table = None                        # built by the first decode call

    @classmethod
    def build(cls, values, *, min_count: int = 1, max_size: int | None = None,
              name: str | None = None) -> "Vocabulary":
        """Count ``values`` and return the vocabulary of those seen at least ``min_count`` times.

        Ids follow descending count, ties broken by string order. Missing values are not
        counted. ``max_size`` keeps only the most frequent values (ids 2 to max_size + 1).
        """
        min_count = _check_min_count(min_count)
        if max_size is not None and (isinstance(max_size, bool)
                                     or not isinstance(max_size, (int, np.integer))
                                     or max_size < 0):
            raise ValueError(f"max_size must be None or a non-negative integer, got {max_size!r}")
        keys, missing = to_keys(values)
        unique_keys, counts = np.unique(keys[~missing], return_counts=True)  # string order
        frequent = counts >= min_count
        unique_keys, counts = unique_keys[frequent], counts[frequent]
        order = np.argsort(-counts, kind="stable")     # stable: equal counts keep string order
        if max_size is not None:
            order = order[:max_size]
        return cls(unique_keys[order].tolist(), counts[order], min_count=min_count, name=name)

    @property
    def size(self) -> int:
        """Number of ids, padding and unknown included (the embedding table's row count)."""
        return len(self.values) + NUM_RESERVED

    def __len__(self) -> int:
        return self.size

    def __repr__(self):
        return f"Vocabulary(name={self.name!r}, size={self.size}, min_count={self.min_count})"

    def __eq__(self, other):
        return (type(other) is type(self) and self.name == other.name
                and self.min_count == other.min_count
                and np.array_equal(self.values, other.values)
                and np.array_equal(self.counts, other.counts))

    def encode(self, values) -> np.ndarray:
        """Return the int64 ids of ``values`` (any shape); missing and unknown values get 1."""
        shape = np.shape(values)
        keys, missing = to_keys(values)
        ids = np.full(keys.shape, UNK, dtype=np.int64)
        if len(self.values) and keys.size:
            # Look each distinct value up once, then spread the ids back to every row.
            distinct, inverse = np.unique(keys, return_inverse=True)
            position = np.searchsorted(self._sorted_keys, distinct)
            position = np.minimum(position, len(self._sorted_keys) - 1)
            found = self._sorted_keys[position] == distinct
            distinct_ids = np.where(found, self._sorted_ids[position], UNK)
            ids = distinct_ids[inverse.reshape(-1)]
        ids[missing] = UNK
        return ids.reshape(shape)

    def decode(self, ids) -> np.ndarray:
        """Return the values of ``ids`` as strings; 0 gives ``"<pad>"`` and 1 ``"<unk>"``."""
        ids = np.asarray(ids)
        if ids.size and not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"ids must be integers, got dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.size):
            bad = ids.min() if ids.min() < 0 else ids.max()
            raise ValueError(
                f"vocabulary {self.name!r}: id {int(bad)} is out of range; valid ids are "
                f"0 to {self.size - 1}"
            )
        if self._decode_table is None:
            self._decode_table = np.array([PAD_TOKEN, UNK_TOKEN, *self.values.tolist()],
                                          dtype=object)
        return self._decode_table[ids.astype(np.int64)]

    def to_dict(self) -> dict:
        """Return the vocabulary as JSON-ready data (used in checkpoints)."""
        return {"type": "Vocabulary", "name": self.name, "min_count": self.min_count,
                "values": self.values.tolist(), "counts": self.counts.tolist()}

    @classmethod
    def from_dict(cls, data) -> "Vocabulary":
        """Rebuild a vocabulary from :meth:`to_dict` output."""
        _check_type(data, cls.__name__)
        return cls(data["values"], data["counts"], min_count=data.get("min_count", 1),
                   name=data.get("name"))


class HashedVocabulary:
    """Map every value to one of ``num_buckets`` ids with a stable hash; store no values.

    The id of a present value is ``2 + crc32(utf8(str(value))) % num_buckets``. Missing
    values get 1 and 0 stays padding, so :attr:`size` is ``num_buckets + 2``. Values never
    seen in training share buckets with training values, and no value is "unknown".

    Notes
    -----
    CRC32 (``zlib.crc32``) is used because Python's ``hash()`` of a string changes with
    ``PYTHONHASHSEED`` from one process to the next. Distinct values may share a bucket.
    """

    def __init__(self, num_buckets: int, *, name: str | None = None):
        if isinstance(num_buckets, bool) or not isinstance(num_buckets, (int, np.integer)) \
                or num_buckets < 1:
            raise ValueError(f"num_buckets must be a positive integer, got {num_buckets!r}")
        self.num_buckets = int(num_buckets)
        self.name = name

    @property
    def size(self) -> int:
        """Number of ids: the buckets plus padding and unknown."""
        return self.num_buckets + NUM_RESERVED

    def __len__(self) -> int:
        return self.size

    def __repr__(self):
        return f"HashedVocabulary(name={self.name!r}, num_buckets={self.num_buckets})"

    def __eq__(self, other):
        return (type(other) is type(self) and self.name == other.name
                and self.num_buckets == other.num_buckets)

    def encode(self, values) -> np.ndarray:
        """Return the int64 bucket ids of ``values`` (any shape); missing values get 1."""
        shape = np.shape(values)
        keys, missing = to_keys(values)
        distinct, inverse = np.unique(keys, return_inverse=True)
        hashes = np.array([zlib.crc32(key.encode("utf-8")) for key in distinct.tolist()],
                          dtype=np.int64)
        ids = (NUM_RESERVED + hashes % self.num_buckets)[inverse.reshape(-1)]
        ids[missing] = UNK
        return ids.reshape(shape)

    def decode(self, ids) -> np.ndarray:
        """Return labels ``"<bucket b>"`` for ids (a hash cannot be inverted)."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= self.size):
            bad = ids.min() if ids.min() < 0 else ids.max()
            raise ValueError(
                f"vocabulary {self.name!r}: id {int(bad)} is out of range; valid ids are "
                f"0 to {self.size - 1}"
            )
        reserved = {PAD: PAD_TOKEN, UNK: UNK_TOKEN}
        labels = [reserved.get(i, f"<bucket {i - NUM_RESERVED}>")
                  for i in ids.reshape(-1).tolist()]
        return np.array(labels, dtype=object).reshape(ids.shape)

    def to_dict(self) -> dict:
        """Return the vocabulary as JSON-ready data (used in checkpoints)."""
        return {"type": "HashedVocabulary", "name": self.name, "num_buckets": self.num_buckets}

    @classmethod
    def from_dict(cls, data) -> "HashedVocabulary":
        _check_type(data, cls.__name__)
        return cls(data["num_buckets"], name=data.get("name"))


def vocabulary_from_dict(data) -> Vocabulary | HashedVocabulary:
    """Rebuild either kind of vocabulary from its ``to_dict`` output."""
    kinds = {"Vocabulary": Vocabulary, "HashedVocabulary": HashedVocabulary}
    kind = data.get("type") if isinstance(data, dict) else None
    if kind not in kinds:
        raise ValueError(
            f"vocabulary data must be a dict with 'type' one of {list(kinds)}, got {kind!r}"
        )
    return kinds[kind].from_dict(data)


def _check_type(data, expected: str) -> None:
    if not isinstance(data, dict) or data.get("type", expected) != expected:
        found = data.get("type") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"expected data of a {expected}, got {found!r}")
