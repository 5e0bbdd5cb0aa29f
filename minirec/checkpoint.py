"""Save a trained model to one ``.npz`` file and load it back, without pickle.

A checkpoint holds only arrays, so ``np.load(path, allow_pickle=False)`` reads it:

- ``weight/<dotted name>``: every parameter and buffer of ``model.state_dict()``;
- ``meta/format``: the checkpoint format version (an int);
- ``meta/model``: the registry name of the model (``"deepfm"``);
- ``meta/schema``, ``meta/vocabularies``, ``meta/config``, ``meta/info``: JSON text, each
  stored as a 0-d unicode array. ``config`` contains the keyword arguments that rebuild the
  model as ``get_model_class(name)(schema, **config)``; ``info`` is free JSON for the
  caller (training settings, metrics, the data it came from).

A file is written to a temporary file in the destination folder and then moved into place,
so a failed write never leaves a partial checkpoint under the destination name.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
import tokenize
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .data.schema import Schema
from .models.base import get_model_class

FORMAT_VERSION = 1
WEIGHT_PREFIX = "weight/"
META_KEYS = ("meta/format", "meta/model", "meta/schema", "meta/vocabularies", "meta/config",
             "meta/info")


def vocabularies_to_json(vocabularies) -> dict:
    """Return ``{field: {"type": ..., "data": ...}}`` for a dict of vocabularies.

    An object with ``to_dict()`` (a ``Vocabulary`` or ``HashedVocabulary`` of
    :mod:`minirec.data.vocab`) is stored as type ``"vocabulary"``, and plain JSON data
    (lists, dicts, numbers) as type ``"json"``.
    """
    result = {}
    for name, vocabulary in dict(vocabularies or {}).items():
        if hasattr(vocabulary, "to_dict"):
            result[str(name)] = {"type": "vocabulary", "data": _json_ready(vocabulary.to_dict())}
        else:
            result[str(name)] = {"type": "json", "data": _json_ready(vocabulary)}
    return result


def vocabularies_from_json(data: dict) -> dict:
    """Rebuild the vocabularies stored by :func:`vocabularies_to_json`."""
    result = {}
    for name, entry in data.items():
        if entry.get("type") == "vocabulary":
            from .data.vocab import vocabulary_from_dict

            result[name] = vocabulary_from_dict(entry["data"])
        else:
            result[name] = entry.get("data")
    return result


def _json_ready(value):
    """Turn NumPy scalars and arrays (and tuples) inside ``value`` into JSON types."""
    if isinstance(value, dict):
        return {str(key): _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    if isinstance(value, np.ndarray):
        return _json_ready(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def to_json(value, **kwargs) -> str:
    """Serialise ``value`` as strict JSON: NumPy types converted, NaN and inf written as null."""
    return json.dumps(_json_ready(value), allow_nan=False, ensure_ascii=False, **kwargs)


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class _OutputExistsError(FileExistsError):
    """FileExistsError whose text is the message alone, with ``errno`` and ``filename`` set."""

    def __str__(self) -> str:
        return self.strerror


def _exists_error(what: str, path: Path, option: str) -> FileExistsError:
    return _OutputExistsError(errno.EEXIST, f"{what} {str(path)!r} already exists; pass "
                                            f"{option} to replace it", str(path))


def write_atomic(path, write, *, overwrite: bool = False, what: str = "file",
                 option: str = "overwrite=True") -> Path:
    """Write a file through ``write(binary_file)`` into a temporary file, then move it to ``path``.

    The temporary file lives in the destination folder, so the final move is a rename on
    one file system. Without ``overwrite`` an existing ``path`` raises FileExistsError
    (checked again at the final step, so a file created meanwhile is not replaced either).
    Its ``filename`` attribute is ``str(path)``.
    On any error the temporary file is removed and ``path`` is left as it was.
    ``option`` is the argument or flag that the error message names for replacing a file.
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise _exists_error(what, path, option)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"folder {str(folder)!r} of {what} {str(path)!r} does not exist")
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates the file readable by its owner only; give it the usual mode.
        os.chmod(temporary, 0o666 & ~_current_umask())
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        if overwrite:
            os.replace(temporary, path)
        else:
            # A hard link fails if the destination exists, so no file is ever replaced.
            try:
                os.link(temporary, path)
            except FileExistsError:
                raise _exists_error(what, path, option) from None
            except OSError:
                # NOTE: file systems without hard links fall back to a check and a rename,
                # which could replace a file created between the two.
                if path.exists():
                    raise _exists_error(what, path, option) from None
                os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path


def write_text_atomic(path, text: str, *, overwrite: bool = False, what: str = "file",
                      option: str = "overwrite=True") -> Path:
    """Write UTF-8 ``text`` to ``path`` through :func:`write_atomic`."""
    data = text.encode("utf-8")
    return write_atomic(path, lambda stream: stream.write(data), overwrite=overwrite,
                        what=what, option=option)


def save_checkpoint(path, model, *, splits=None, schema: Schema | None = None,
                    vocabularies: dict | None = None, config: dict | None = None,
                    info: dict | None = None, overwrite: bool = False,
                    option: str = "overwrite=True") -> Path:
    """Write ``model``'s weights, schema, vocabularies, name and config to ``path`` (.npz).

    Parameters
    ----------
    path : str or Path
        The file to write, used exactly as given (no suffix is added).
    model : Model
        Needs ``name`` (its registry key), ``config`` and ``state_dict()``.
    splits : TaskSplits, optional
        Source of the vocabularies when ``vocabularies`` is not given.
    schema : Schema, optional
        Default: ``model.schema``.
    vocabularies : dict, optional
        Field name to vocabulary; default ``splits.vocabularies`` or none.
    config : dict, optional
        Keyword arguments that rebuild the model; default ``model.config``.
    info : dict, optional
        Extra JSON data returned by :func:`load_checkpoint` as ``metadata["info"]``.
    overwrite : bool
        Replace an existing file; otherwise an existing ``path`` raises FileExistsError.
    option : str
        The argument or flag that the FileExistsError message names for replacing a file.
    """
    schema = getattr(model, "schema", None) if schema is None else schema
    if not isinstance(schema, Schema):
        raise TypeError(f"schema must be a minirec Schema (or model.schema one), "
                        f"got {type(schema).__name__}")
    if vocabularies is None:
        vocabularies = getattr(splits, "vocabularies", None) or {}
    config = getattr(model, "config", None) if config is None else config
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict of the model's keyword arguments, "
                        f"got {type(config).__name__}")
    name = getattr(model, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"model.name must be the model's registry name, got {name!r}")

    arrays = {}
    for key, value in model.state_dict().items():
        arrays[WEIGHT_PREFIX + key] = np.asarray(value)
    arrays["meta/format"] = np.array(FORMAT_VERSION)
    arrays["meta/model"] = np.array(name)
    arrays["meta/schema"] = np.array(to_json(schema.to_dict()))
    arrays["meta/vocabularies"] = np.array(to_json(vocabularies_to_json(vocabularies)))
    arrays["meta/config"] = np.array(to_json(config))
    arrays["meta/info"] = np.array(to_json(info or {}))
    for key, value in arrays.items():
        if value.dtype == object:
            raise TypeError(f"checkpoint entry {key!r} would need pickle (dtype object)")

    return write_atomic(path, lambda stream: np.savez(stream, **arrays), overwrite=overwrite,
                        what="checkpoint", option=option)


# What np.load and zipfile raise on a damaged or truncated archive: a cut or altered zip
# directory (BadZipFile, EOFError), an unknown compression or strong-encryption flag in an
# altered header (NotImplementedError), a plain encryption flag (RuntimeError asking for a
# password), an entry offset outside the file (OSError from seek), a garbled .npy header
# (ValueError, or TokenError and SyntaxError from the header parser) and corrupt compressed
# data (zlib.error). An unreadable file fails earlier, in open().
_DAMAGED_ARCHIVE_ERRORS = (zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError,
                           OSError, ValueError, tokenize.TokenError, SyntaxError, zlib.error)


def _read_archive(path: Path) -> dict:
    """Return every array of the .npz file ``path``; raise ValueError for anything else."""
    with open(path, "rb") as stream:
        signature = stream.read(4)
    if not signature:
        raise ValueError(f"{str(path)!r} is empty (0 bytes), so it is not a minirec "
                         f"checkpoint (.npz) file")
    # The two openings np.load accepts as an archive: a local file header or, for an
    # archive without entries, the end-of-directory record.
    if signature not in (b"PK\x03\x04", b"PK\x05\x06"):
        raise ValueError(f"{str(path)!r} is not a minirec checkpoint (.npz) file: it does not "
                         f"start with the zip signature that every .npz file has")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except _DAMAGED_ARCHIVE_ERRORS as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise ValueError(f"{str(path)!r} is damaged or truncated, so it cannot be read as a "
                         f"checkpoint ({reason}); restore it from a copy or train again") \
            from None
    except MemoryError as error:
        raise ValueError(f"checkpoint {str(path)!r} needs more memory than is free to read "
                         f"({error}); if it is not that large, it is damaged") from None


def _read_json(contents: dict, key: str, path: Path):
    try:
        return json.loads(str(contents[key]))
    except ValueError as error:
        raise ValueError(f"checkpoint {str(path)!r} has invalid JSON in {key!r}: "
                         f"{error}") from None


def read_checkpoint(path) -> tuple[dict, dict]:
    """Return ``(weights, metadata)`` of a checkpoint without building the model.

    ``metadata`` has ``model`` (name), ``schema`` (Schema), ``vocabularies`` (rebuilt),
    ``vocabularies_json`` (as stored), ``config``, ``info`` and ``format``. Raises
    FileNotFoundError for a missing file, IsADirectoryError for a folder, and ValueError
    for a file that is not a readable minirec checkpoint (another format, a damaged or
    truncated archive, missing entries, invalid JSON, schema or vocabularies).
    """
    path = Path(path)
    if path.is_dir():
        hint = ""
        if (path / "model.npz").is_file():
            hint = f"; pass {str(path / 'model.npz')!r}"
        raise IsADirectoryError(f"{str(path)!r} is a folder, not a checkpoint file{hint}")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} not found")
    contents = _read_archive(path)
    missing = [key for key in META_KEYS if key not in contents]
    if missing:
        raise ValueError(f"{str(path)!r} is not a minirec checkpoint: missing {missing}")
    try:
        version = int(contents["meta/format"])
    except (TypeError, ValueError):
        raise ValueError(f"checkpoint {str(path)!r} has an invalid format version "
                         f"{contents['meta/format']!r}; expected an integer") from None
    if version != FORMAT_VERSION:
        raise ValueError(f"checkpoint {str(path)!r} has format version {version}; this "
                         f"version of minirec reads format {FORMAT_VERSION}")
    schema_data = _read_json(contents, "meta/schema", path)
    vocabularies_json = _read_json(contents, "meta/vocabularies", path)
    config = _read_json(contents, "meta/config", path)
    info = _read_json(contents, "meta/info", path)
    try:
        schema = Schema.from_dict(schema_data)
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"checkpoint {str(path)!r} has an invalid schema in 'meta/schema': "
                         f"{error}") from None
    try:
        vocabularies = vocabularies_from_json(vocabularies_json)
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise ValueError(f"checkpoint {str(path)!r} has invalid vocabularies in "
                         f"'meta/vocabularies': {error}") from None
    if not isinstance(config, dict):
        raise ValueError(f"checkpoint {str(path)!r} has an invalid 'meta/config': expected a "
                         f"JSON object of keyword arguments, got {type(config).__name__}")
    if not isinstance(info, dict):
        raise ValueError(f"checkpoint {str(path)!r} has an invalid 'meta/info': expected a "
                         f"JSON object, got {type(info).__name__}")
    metadata = {
        "format": version,
        "model": str(contents["meta/model"]),
        "schema": schema,
        "vocabularies_json": vocabularies_json,
        "vocabularies": vocabularies,
        "config": config,
        "info": info,
    }
    weights = {key[len(WEIGHT_PREFIX):]: value for key, value in contents.items()
               if key.startswith(WEIGHT_PREFIX)}
    return weights, metadata


def _check_finite_weights(path: Path, weights: dict, parameter_names: set) -> None:
    """Raise ValueError naming the first parameter or buffer with a NaN or infinite value."""
    for name, value in weights.items():
        if value.dtype.kind not in "fc":
            continue
        bad = ~np.isfinite(value)
        if bad.any():
            kind = "parameter" if name in parameter_names else "buffer"
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"checkpoint {str(path)!r} has {int(bad.sum())} NaN or infinite value(s) in "
                f"{kind} {name!r} (the first at index {index}), so the model cannot give "
                f"valid predictions; use a checkpoint of a run that trained without diverging"
            )


def load_checkpoint(path, *, model_class=None):
    """Rebuild the model stored at ``path`` and return ``(model, metadata)``.

    The model is built as ``get_model_class(name)(schema, **config)`` (or
    ``model_class(schema, **config)`` for a class outside the registry), its weights and
    buffers are loaded, and it is put in evaluation mode. ``metadata`` is described in
    :func:`read_checkpoint`. Raises ValueError (besides the errors of
    :func:`read_checkpoint`) when the stored model name is unknown, when the stored
    configuration or weights do not fit the model, or when a weight is NaN or infinite.
    """
    path = Path(path)
    weights, metadata = read_checkpoint(path)
    name = metadata["model"]
    if model_class is None:
        try:
            cls = get_model_class(name)
        except (ImportError, AttributeError, ValueError) as error:
            raise ValueError(f"checkpoint {str(path)!r} stores model {name!r}, which this "
                             f"version of minirec cannot build ({error})") from None
    else:
        cls = model_class
    try:
        model = cls(metadata["schema"], **metadata["config"])
    except (TypeError, ValueError, KeyError) as error:
        raise ValueError(f"the configuration stored in checkpoint {str(path)!r} does not match "
                         f"model {name!r} ({error})") from None
    _check_finite_weights(path, weights, {key for key, _, _ in model.parameters()})
    try:
        model.load_state_dict(weights)
    except ValueError as error:
        raise ValueError(f"the weights stored in checkpoint {str(path)!r} do not match model "
                         f"{name!r} ({error})") from None
    model.eval()
    return model, metadata
