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

import json
import os
import tempfile
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


def write_atomic(path, write, *, overwrite: bool = False, what: str = "file",
                 option: str = "overwrite=True") -> Path:
    """Write a file through ``write(binary_file)`` into a temporary file, then move it to ``path``.

    The temporary file lives in the destination folder, so the final move is a rename on
    one file system. Without ``overwrite`` an existing ``path`` raises FileExistsError
    (checked again at the final step, so a file created meanwhile is not replaced either).
    On any error the temporary file is removed and ``path`` is left as it was.
    ``option`` is the argument or flag that the error message names for replacing a file.
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(f"{what} {str(path)!r} already exists; pass {option} to replace it")
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
                raise FileExistsError(
                    f"{what} {str(path)!r} already exists; pass {option} to replace it"
                ) from None
            except OSError:
                # NOTE: file systems without hard links fall back to a check and a rename,
                # which could replace a file created between the two.
                if path.exists():
                    raise FileExistsError(
                        f"{what} {str(path)!r} already exists; pass {option} to replace it"
                    ) from None
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


def read_checkpoint(path) -> tuple[dict, dict]:
    """Return ``(weights, metadata)`` of a checkpoint without building the model.

    ``metadata`` has ``model`` (name), ``schema`` (Schema), ``vocabularies`` (rebuilt),
    ``vocabularies_json`` (as stored), ``config``, ``info`` and ``format``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} not found")
    try:
        with np.load(path, allow_pickle=False) as archive:
            contents = {key: archive[key] for key in archive.files}
    except (OSError, ValueError) as error:
        raise ValueError(f"{str(path)!r} is not a minirec checkpoint (.npz): {error}") from None
    missing = [key for key in META_KEYS if key not in contents]
    if missing:
        raise ValueError(f"{str(path)!r} is not a minirec checkpoint: missing {missing}")
    version = int(contents["meta/format"])
    if version != FORMAT_VERSION:
        raise ValueError(f"checkpoint {str(path)!r} has format version {version}; this "
                         f"version of minirec reads format {FORMAT_VERSION}")
    vocabularies_json = json.loads(str(contents["meta/vocabularies"]))
    metadata = {
        "format": version,
        "model": str(contents["meta/model"]),
        "schema": Schema.from_dict(json.loads(str(contents["meta/schema"]))),
        "vocabularies_json": vocabularies_json,
        "vocabularies": vocabularies_from_json(vocabularies_json),
        "config": json.loads(str(contents["meta/config"])),
        "info": json.loads(str(contents["meta/info"])),
    }
    weights = {key[len(WEIGHT_PREFIX):]: value for key, value in contents.items()
               if key.startswith(WEIGHT_PREFIX)}
    return weights, metadata


def load_checkpoint(path, *, model_class=None):
    """Rebuild the model stored at ``path`` and return ``(model, metadata)``.

    The model is built as ``get_model_class(name)(schema, **config)`` (or
    ``model_class(schema, **config)`` for a class outside the registry), its weights and
    buffers are loaded, and it is put in evaluation mode. ``metadata`` is described in
    :func:`read_checkpoint`.
    """
    weights, metadata = read_checkpoint(path)
    cls = get_model_class(metadata["model"]) if model_class is None else model_class
    model = cls(metadata["schema"], **metadata["config"])
    model.load_state_dict(weights)
    model.eval()
    return model, metadata
