"""Tests of checkpoints: exact round trips, no pickle, no overwrite, no partial files."""

import json
import os

import numpy as np
import pytest

from minirec import checkpoint as checkpoint_module
from minirec.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from minirec.data.dataset import Dataset, TaskSplits
from minirec.data.schema import Field, Schema
from minirec.data.vocab import HashedVocabulary, Vocabulary
from minirec.models.base import Model
from minirec.nn.base import check_random_state
from minirec.train import fit, predict


class TinyLinear(Model):
    """A linear click model over sparse fields, with one buffer to check buffers are saved."""

    name = "tiny-linear"

    def __init__(self, schema, *, init_std=0.1, random_state=None, dtype=np.float64):
        super().__init__(schema, dtype=dtype, init_std=init_std)
        rng = check_random_state(random_state)
        for f in schema.sparse_fields:
            self.add_param(f"w_{f.name}",
                           (init_std * rng.standard_normal(f.vocab_size)).astype(self.dtype))
        self.buffers = {"seen_batches": np.zeros(1)}

    def _forward(self, batch):
        self._batch = batch
        if self.training:
            self.buffers["seen_batches"] += 1
        logits = sum(self.params[f"w_{f.name}"][batch[f.name]] for f in self.schema.sparse_fields)
        return np.asarray(logits, dtype=self.dtype)

    def backward(self, dlogits):
        for f in self.schema.sparse_fields:
            np.add.at(self.grads[f"w_{f.name}"], self._batch[f.name], dlogits)
        return {}


def tiny_splits(seed=0, n=600):
    rng = np.random.default_rng(seed)
    schema = Schema([Field("user", "sparse", 9), Field("item", "sparse", 7)])
    columns = {"user": rng.integers(2, 9, size=n), "item": rng.integers(2, 7, size=n)}
    labels = (rng.random(n) < 0.2 + 0.1 * (columns["item"] % 4)).astype(np.float64)
    data = Dataset(schema, columns, labels)
    vocabularies = {"user": Vocabulary([f"u{i}" for i in range(7)], list(range(1, 8)),
                                       name="user"),
                    "item": HashedVocabulary(5, name="item")}
    return TaskSplits("tiny", data.take(np.arange(0, 400)), data.take(np.arange(400, 500)),
                      data.take(np.arange(500, n)), vocabularies)


def trained_tiny(seed=0):
    splits = tiny_splits(seed)
    model = TinyLinear(splits.schema, random_state=seed)
    fit(model, splits, lr=0.05, epochs=2, batch_size=64, verbose=False)
    return model, splits


def test_round_trip_predicts_exactly_the_same(tmp_path):
    model, splits = trained_tiny()
    path = save_checkpoint(tmp_path / "tiny.npz", model, splits=splits,
                           info={"note": "unit test", "auc": 0.5})
    loaded, metadata = load_checkpoint(path, model_class=TinyLinear)
    assert np.array_equal(predict(loaded, splits.test), predict(model, splits.test))
    assert metadata["model"] == "tiny-linear"
    assert metadata["schema"] == model.schema
    assert metadata["config"] == model.config
    assert metadata["info"] == {"note": "unit test", "auc": 0.5}
    assert metadata["vocabularies"]["user"] == splits.vocabularies["user"]
    assert metadata["vocabularies"]["item"] == splits.vocabularies["item"]
    np.testing.assert_array_equal(loaded.buffers["seen_batches"], model.buffers["seen_batches"])
    assert not loaded.training


def test_round_trip_float32(tmp_path):
    splits = tiny_splits()
    model = TinyLinear(splits.schema, random_state=1, dtype=np.float32)
    save_checkpoint(tmp_path / "tiny.npz", model)
    loaded, metadata = load_checkpoint(tmp_path / "tiny.npz", model_class=TinyLinear)
    assert metadata["config"]["dtype"] == "float32"
    assert loaded.dtype == np.float32
    assert np.array_equal(predict(loaded, splits.test), predict(model, splits.test))


REGISTRY_CASES = [
    ("fm", "click", {"embedding_dim": 4}),
    ("fnn", "click", {"embedding_dim": 4, "hidden": (8,)}),
    ("deepfm", "click", {"embedding_dim": 4, "hidden": (8,)}),
    ("afm", "fields", {"embedding_dim": 4}),
    ("din", "interest", {"embedding_dim": 4}),
]


@pytest.mark.parametrize("name, world, kwargs", REGISTRY_CASES,
                         ids=[case[0] for case in REGISTRY_CASES])
def test_round_trip_of_registry_models(tmp_path, name, world, kwargs):
    from minirec.data.synthetic import WORLDS
    from minirec.models.base import get_model_class

    if world not in WORLDS:
        pytest.skip(f"synthetic world {world!r} is not written yet")
    try:
        cls = get_model_class(name)
    except ImportError:
        pytest.skip(f"model {name!r} is not written yet")
    splits = WORLDS[world](random_state=0)
    splits = TaskSplits(splits.name, splits.train.take(np.arange(600)), splits.valid,
                        splits.test, splits.vocabularies)
    model = cls(splits.schema, random_state=0, **kwargs)
    fit(model, splits, lr=0.01, epochs=1, batch_size=128, verbose=False)
    path = save_checkpoint(tmp_path / "model.npz", model, splits=splits)
    loaded, metadata = load_checkpoint(path)
    assert type(loaded) is cls
    assert metadata["model"] == name
    assert np.array_equal(predict(loaded, splits.test), predict(model, splits.test))


def test_file_contains_no_pickled_objects(tmp_path):
    model, splits = trained_tiny()
    path = save_checkpoint(tmp_path / "tiny.npz", model, splits=splits)
    with np.load(path, allow_pickle=False) as archive:
        files = set(archive.files)
        schema_text = archive["meta/schema"]
        assert schema_text.shape == ()
        assert schema_text.dtype.kind == "U"
        assert json.loads(str(schema_text)) == model.schema.to_dict()
        assert str(archive["meta/model"]) == "tiny-linear"
        for key in files:
            assert archive[key].dtype != object, key
    assert {"weight/w_user", "weight/w_item", "weight/seen_batches"} <= files


def test_no_overwrite_without_flag(tmp_path):
    model, splits = trained_tiny()
    path = tmp_path / "tiny.npz"
    save_checkpoint(path, model, splits=splits)
    before = path.read_bytes()
    other, _ = trained_tiny(seed=5)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_checkpoint(path, other, splits=splits)
    assert path.read_bytes() == before

    save_checkpoint(path, other, splits=splits, overwrite=True)
    loaded, _ = load_checkpoint(path, model_class=TinyLinear)
    assert np.array_equal(predict(loaded, splits.test), predict(other, splits.test))
    assert sorted(os.listdir(tmp_path)) == ["tiny.npz"]


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    model, splits = trained_tiny()

    def broken_savez(stream, **arrays):
        stream.write(b"PK\x03\x04 partial zip")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module.np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path / "tiny.npz", model, splits=splits)
    assert os.listdir(tmp_path) == []


def test_failed_overwrite_keeps_old_file(tmp_path, monkeypatch):
    model, splits = trained_tiny()
    path = save_checkpoint(tmp_path / "tiny.npz", model, splits=splits)
    before = path.read_bytes()

    def broken_savez(stream, **arrays):
        stream.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module.np, "savez", broken_savez)
    with pytest.raises(OSError):
        save_checkpoint(path, model, splits=splits, overwrite=True)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["tiny.npz"]


def test_written_through_temporary_file_and_rename(tmp_path, monkeypatch):
    model, splits = trained_tiny()
    moves = []
    real_link = os.link

    def recording_link(source, destination):
        moves.append((os.path.basename(source), os.path.basename(destination)))
        # the temporary file is complete before it takes the destination name
        assert os.path.getsize(source) > 0
        assert not os.path.exists(destination)
        return real_link(source, destination)

    monkeypatch.setattr(checkpoint_module.os, "link", recording_link)
    save_checkpoint(tmp_path / "tiny.npz", model, splits=splits)
    assert len(moves) == 1
    source, destination = moves[0]
    assert destination == "tiny.npz"
    assert source.startswith(".tiny.npz.")
    assert source.endswith(".tmp")
    assert os.listdir(tmp_path) == ["tiny.npz"]


def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_checkpoint(tmp_path / "absent.npz")
    text_file = tmp_path / "notes.npz"
    text_file.write_text("not a zip")
    with pytest.raises(ValueError, match="not a minirec checkpoint"):
        read_checkpoint(text_file)
    np.savez(tmp_path / "plain.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="missing"):
        read_checkpoint(tmp_path / "plain.npz")


def test_missing_folder_is_reported(tmp_path):
    model, _ = trained_tiny()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_checkpoint(tmp_path / "absent" / "tiny.npz", model)


def test_model_without_registry_name_is_rejected(tmp_path):
    model, _ = trained_tiny()
    model.name = ""
    with pytest.raises(ValueError, match="registry name"):
        save_checkpoint(tmp_path / "tiny.npz", model)
