"""Schema of named fields, and the checks every batch passes before a model reads it.

A batch is a dict from key to NumPy array, all with the same first axis ``B``:

- ``sparse`` field: ``batch[name]`` int64 ``(B,)``, one id per row;
- ``multi`` field (multi-valued sparse, such as genres): ``batch[name]`` int64 ``(B, L)``, a
  padded id list per row where id 0 is padding;
- ``dense`` field: ``batch[name]`` float ``(B,)``;
- ``sequence`` field (a behaviour sequence): ``batch[name]`` int64 ``(B, T)`` plus the
  lengths ``batch[field.length]`` int64 ``(B,)``; positions at or after the length are
  padding. A sequence shares the vocabulary, and so the embedding table, of the sparse
  field named by ``vocab_of``. Several sequences may share one length key.

Id 0 is padding and id 1 stands for unknown values in every vocabulary built by
:mod:`minirec.data.vocab`, so a field of ``vocab_size`` ids accepts ``0 .. vocab_size - 1``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable, Mapping

import numpy as np

SPARSE = "sparse"
MULTI = "multi"
DENSE = "dense"
SEQUENCE = "sequence"
KINDS = (SPARSE, MULTI, DENSE, SEQUENCE)


@dataclass(frozen=True)
class Field:
    """One named input of a model.

    Parameters
    ----------
    name : str
    kind : str
        ``sparse``, ``multi``, ``dense`` or ``sequence``.
    vocab_size : int
        Number of ids (padding and unknown included) for sparse and multi fields; for a
        sequence, the size of the vocabulary it shares (filled in by :class:`Schema`).
    max_len : int
        Padded width ``L`` of a multi field or ``T`` of a sequence; 1 otherwise.
    vocab_of : str, optional
        For a sequence: the sparse field whose vocabulary and embedding table it uses.
    length : str, optional
        For a sequence: the batch key of its lengths (default ``<name>_length``).
    """

    name: str
    kind: str
    vocab_size: int = 0
    max_len: int = 1
    vocab_of: str | None = None
    length: str | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"field name must be a non-empty string, got {self.name!r}")
        if self.kind not in KINDS:
            raise ValueError(
                f"field {self.name!r}: kind must be one of {', '.join(KINDS)}, got {self.kind!r}"
            )
        if self.kind in (SPARSE, MULTI) and (not isinstance(self.vocab_size, (int, np.integer))
                                             or self.vocab_size < 1):
            raise ValueError(
                f"field {self.name!r}: vocab_size must be a positive integer, "
                f"got {self.vocab_size!r}"
            )
        if self.kind in (MULTI, SEQUENCE) and (not isinstance(self.max_len, (int, np.integer))
                                               or self.max_len < 1):
            raise ValueError(
                f"field {self.name!r}: max_len must be a positive integer, got {self.max_len!r}"
            )
        if self.kind == SEQUENCE:
            if not self.vocab_of:
                raise ValueError(
                    f"sequence field {self.name!r} needs vocab_of, the sparse field whose "
                    "vocabulary it shares"
                )
            if self.length is None:
                object.__setattr__(self, "length", f"{self.name}_length")


class Schema:
    """An ordered collection of :class:`Field` objects with batch validation."""

    def __init__(self, fields: Iterable[Field]):
        fields = list(fields)
        names = [f.name for f in fields]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"field names must be unique; repeated: {duplicates}")
        by_name = {f.name: f for f in fields}
        resolved = []
        for f in fields:
            if f.kind == SEQUENCE:
                source = by_name.get(f.vocab_of)
                if source is None or source.kind != SPARSE:
                    raise ValueError(
                        f"sequence field {f.name!r}: vocab_of={f.vocab_of!r} must name a sparse "
                        f"field of the schema; sparse fields are "
                        f"{[g.name for g in fields if g.kind == SPARSE]}"
                    )
                f = Field(f.name, SEQUENCE, source.vocab_size, f.max_len, f.vocab_of, f.length)
            resolved.append(f)
        self.fields: tuple[Field, ...] = tuple(resolved)
        self._by_name = {f.name: f for f in self.fields}
        clashes = sorted({f.length for f in self.sequence_fields} & set(self._by_name))
        if clashes:
            raise ValueError(f"sequence length keys clash with field names: {clashes}")

    def __getitem__(self, name: str) -> Field:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no field {name!r}; fields are {list(self._by_name)}") from None

    def __contains__(self, name) -> bool:
        return name in self._by_name

    def __iter__(self):
        return iter(self.fields)

    def __len__(self):
        return len(self.fields)

    def __repr__(self):
        return f"Schema({list(self.fields)!r})"

    def __eq__(self, other):
        return isinstance(other, Schema) and self.fields == other.fields

    def of_kind(self, *kinds: str) -> list[Field]:
        """Return the fields of the given kinds, in schema order."""
        return [f for f in self.fields if f.kind in kinds]

    @property
    def sparse_fields(self) -> list[Field]:
        return self.of_kind(SPARSE)

    @property
    def multi_fields(self) -> list[Field]:
        return self.of_kind(MULTI)

    @property
    def dense_fields(self) -> list[Field]:
        return self.of_kind(DENSE)

    @property
    def sequence_fields(self) -> list[Field]:
        return self.of_kind(SEQUENCE)

    @property
    def categorical_fields(self) -> list[Field]:
        """Sparse and multi fields: those with one embedding per field in FM-style models."""
        return self.of_kind(SPARSE, MULTI)

    def select(self, names) -> "Schema":
        """Return a schema of the fields ``names``, kept in this schema's order.

        A selected sequence field needs the sparse field it shares a vocabulary with.
        """
        names = list(names)
        unknown = [name for name in names if name not in self._by_name]
        if unknown:
            raise ValueError(f"unknown field(s) {unknown}; fields are {list(self._by_name)}")
        return Schema(f for f in self.fields if f.name in names)

    def batch_keys(self) -> list[str]:
        """Return every key a batch must hold: field names, then sequence length keys."""
        keys = [f.name for f in self.fields]
        for f in self.sequence_fields:
            if f.length not in keys:
                keys.append(f.length)
        return keys

    def to_dict(self) -> list[dict]:
        """Return the schema as JSON-ready data (used in checkpoints)."""
        return [asdict(f) for f in self.fields]

    @classmethod
    def from_dict(cls, data: list[Mapping]) -> "Schema":
        return cls(Field(**dict(entry)) for entry in data)

    def validate_batch(self, batch: Mapping[str, np.ndarray], *, argument: str = "batch") -> int:
        """Check keys, dtypes, shapes and id ranges of ``batch``; return its size ``B``.

        Raises ValueError naming the field, the value found and what would be valid.
        """
        if not isinstance(batch, Mapping):
            raise TypeError(f"{argument} must be a dict of arrays, got {type(batch).__name__}")
        expected = self.batch_keys()
        missing = [key for key in expected if key not in batch]
        if missing:
            raise ValueError(f"{argument} is missing field(s) {missing}; expected keys {expected}")
        extra = sorted(set(batch) - set(expected))
        if extra:
            raise ValueError(f"{argument} has unexpected key(s) {extra}; expected keys {expected}")

        sizes = {key: np.shape(batch[key])[0] if np.ndim(batch[key]) else None for key in expected}
        first = expected[0]
        B = sizes[first]
        for key in expected:
            if sizes[key] is None or sizes[key] != B:
                raise ValueError(
                    f"{argument}[{key!r}] has shape {np.shape(batch[key])}; every key needs the "
                    f"same batch size as {first!r} ({B})"
                )

        for f in self.fields:
            value = batch[f.name]
            if f.kind == DENSE:
                _check_array(value, f.name, (B,), np.floating, "a float array")
                if not np.all(np.isfinite(value)):
                    raise ValueError(f"dense field {f.name!r} contains NaN or infinite values")
                continue
            width = {SPARSE: None, MULTI: f.max_len, SEQUENCE: f.max_len}[f.kind]
            shape = (B,) if width is None else (B, None)
            _check_array(value, f.name, shape, np.integer, "an integer id array")
            if f.kind in (MULTI, SEQUENCE) and value.shape[1] > f.max_len:
                raise ValueError(
                    f"{f.kind} field {f.name!r} has width {value.shape[1]}, longer than its "
                    f"declared maximum max_len={f.max_len}"
                )
            _check_ids(value, f.name, f.vocab_size)

        for f in self.sequence_fields:
            lengths = batch[f.length]
            _check_array(lengths, f.length, (B,), np.integer, "an integer length array")
            width = batch[f.name].shape[1]
            if lengths.size and (lengths.min() < 0 or lengths.max() > width):
                bad = lengths[(lengths < 0) | (lengths > width)][0]
                raise ValueError(
                    f"{f.length!r} contains length {int(bad)}, which is invalid: lengths must lie in [0, {width}], "
                    f"the padded width of {f.name!r}"
                )
        return int(B)


def _check_array(value, key, shape, kind, description):
    if not isinstance(value, np.ndarray):
        raise ValueError(f"field {key!r} must be a numpy array, got {type(value).__name__}")
    if not np.issubdtype(value.dtype, kind):
        raise ValueError(f"field {key!r} must be {description}, got dtype {value.dtype}")
    if value.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, value.shape)):
        wanted = "(" + ", ".join("B" if i == 0 else "T" for i in range(len(shape))) + ")"
        if len(shape) == 1:
            wanted = "(B,)"
        raise ValueError(f"field {key!r} must have shape {wanted}, got {value.shape}")


def ids_in_range(ids: np.ndarray, num_ids: int) -> bool:
    """Return True when every entry of the integer array ``ids`` lies in ``[0, num_ids)``.

    A signed array is read once: viewed as unsigned integers of the same size, a negative
    id becomes larger than any valid id, so the maximum alone decides. This is exact when
    ``num_ids`` is at most 2^(bits - 1); other cases compare the minimum and the maximum.
    """
    if ids.size == 0:
        return True
    if ids.dtype.kind == "i" and num_ids <= 2 ** (8 * ids.dtype.itemsize - 1):
        return int(ids.view(ids.dtype.str.replace("i", "u")).max()) < num_ids
    return int(ids.min()) >= 0 and int(ids.max()) < num_ids


def _check_ids(ids, name, vocab_size):
    if ids_in_range(ids, vocab_size):
        return
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= vocab_size:
        bad = low if low < 0 else high
        raise ValueError(
            f"field {name!r} contains id {bad}, outside its vocabulary: valid ids are "
            f"0 to {vocab_size - 1}"
        )
