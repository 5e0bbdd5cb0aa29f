"""Tests of checkpoints: exact round trips, no pickle, no overwrite, no partial files."""

import json
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


# --------------------------------------------------------------------------------------
# damaged and mismatched files raise ValueError naming the cause
# --------------------------------------------------------------------------------------

def saved_tiny(tmp_path, name="tiny.npz", **kwargs):
    model, splits = trained_tiny()
    return save_checkpoint(tmp_path / name, model, splits=splits, **kwargs), model


def rewrite_entries(path, **changes):
    """Rewrite the checkpoint at ``path`` with some entries replaced (keys use "__" for "/")."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    for key, value in changes.items():
        arrays[key.replace("__", "/")] = value
    with open(path, "wb") as stream:
        np.savez(stream, **arrays)


def test_truncated_file_is_damaged(tmp_path):
    path, _ = saved_tiny(tmp_path)
    data = path.read_bytes()
    assert len(data) > 2000
    path.write_bytes(data[:2000])
    with pytest.raises(ValueError, match="damaged or truncated"):
        load_checkpoint(path, model_class=TinyLinear)


def test_empty_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"is empty \(0 bytes\)"):
        load_checkpoint(path)


def test_flipped_directory_name_is_damaged(tmp_path):
    path, _ = saved_tiny(tmp_path)
    data = bytearray(path.read_bytes())
    # The last "weight/" is the central directory's copy of an entry name, so the directory
    # and the entry's local header now disagree.
    position = data.rfind(b"weight/")
    data[position:position + 3] = b"XYZ"
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="damaged or truncated") as caught:
        load_checkpoint(path, model_class=TinyLinear)
    assert "differ" in str(caught.value)


@pytest.mark.parametrize("name, content", [
    ("notes.txt", "plain text, not an archive\n"),
    ("metrics.json", '{"model": "fm", "test": {"auc": 0.7}}\n'),
])
def test_text_file_is_not_a_checkpoint(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ValueError, match=r"is not a minirec checkpoint \(\.npz\) file") as caught:
        load_checkpoint(path)
    assert "pickle" not in str(caught.value)


def test_npy_file_is_not_a_checkpoint(tmp_path):
    np.save(tmp_path / "array.npy", np.arange(3))
    with pytest.raises(ValueError, match=r"not a minirec checkpoint \(\.npz\) file"):
        load_checkpoint(tmp_path / "array.npy")


def test_folder_is_not_a_checkpoint_file(tmp_path):
    saved_tiny(tmp_path, name="model.npz")
    with pytest.raises(IsADirectoryError, match="is a folder, not a checkpoint file") as caught:
        load_checkpoint(tmp_path)
    assert str(tmp_path / "model.npz") in str(caught.value)


def test_config_of_another_model_is_rejected(tmp_path):
    path, _ = saved_tiny(tmp_path, config={"init_std": 0.1, "hidden": [8]})
    with pytest.raises(ValueError, match="configuration stored in checkpoint .* does not "
                                         "match model 'tiny-linear'"):
        load_checkpoint(path, model_class=TinyLinear)


def test_stored_model_name_that_does_not_fit(tmp_path):
    # A checkpoint labelled "fm" whose config has a keyword FM does not take.
    model, splits = trained_tiny()
    model.name = "fm"
    path = save_checkpoint(tmp_path / "tiny.npz", model, splits=splits,
                           config={"hidden": [8]})
    with pytest.raises(ValueError, match="configuration stored in checkpoint .* does not "
                                         "match model 'fm'") as caught:
        load_checkpoint(path)
    assert "hidden" in str(caught.value)


def test_stored_model_name_with_other_weights(tmp_path):
    model, splits = trained_tiny()
    model.name = "fm"
    path = save_checkpoint(tmp_path / "tiny.npz", model, splits=splits, config={})
    with pytest.raises(ValueError, match="weights stored in checkpoint .* do not match "
                                         "model 'fm'"):
        load_checkpoint(path)


def test_unknown_model_name_is_rejected(tmp_path):
    path, _ = saved_tiny(tmp_path)
    rewrite_entries(path, meta__model=np.array("gbdt"))
    with pytest.raises(ValueError, match="stores model 'gbdt', which this version of minirec "
                                         "cannot build"):
        load_checkpoint(path)


def test_weights_of_another_shape_are_rejected(tmp_path):
    path, _ = saved_tiny(tmp_path)
    rewrite_entries(path, weight__w_user=np.zeros(4))
    with pytest.raises(ValueError, match="weights stored in checkpoint .* do not match") as caught:
        load_checkpoint(path, model_class=TinyLinear)
    assert "w_user" in str(caught.value)


@pytest.mark.parametrize("key", ["meta/config", "meta/schema", "meta/vocabularies",
                                 "meta/info"])
def test_broken_json_is_rejected(tmp_path, key):
    path, _ = saved_tiny(tmp_path)
    rewrite_entries(path, **{key.replace("/", "__"): np.array('{"init_std": 0.1,')})
    with pytest.raises(ValueError, match=f"invalid JSON in '{key}'"):
        load_checkpoint(path, model_class=TinyLinear)


@pytest.mark.parametrize("key, text, expected", [
    ("meta/config", "[0.1]", "invalid 'meta/config'"),
    ("meta/info", "3", "invalid 'meta/info'"),
    ("meta/schema", '[{"name": "user"}]', "invalid schema"),
    ("meta/vocabularies", '{"user": 3}', "invalid vocabularies"),
])
def test_json_of_the_wrong_shape_is_rejected(tmp_path, key, text, expected):
    path, _ = saved_tiny(tmp_path)
    rewrite_entries(path, **{key.replace("/", "__"): np.array(text)})
    with pytest.raises(ValueError, match=expected):
        load_checkpoint(path, model_class=TinyLinear)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_are_rejected(tmp_path, bad):
    model, splits = trained_tiny()
    model.params["w_item"][3] = bad
    path = save_checkpoint(tmp_path / "tiny.npz", model, splits=splits)
    with pytest.raises(ValueError, match=r"NaN or infinite value\(s\) in parameter 'w_item' "
                                         r"\(the first at index \(3,\)\)"):
        load_checkpoint(path, model_class=TinyLinear)


def test_non_finite_buffer_is_rejected(tmp_path):
    model, splits = trained_tiny()
    model.buffers["seen_batches"][0] = np.nan
    path = save_checkpoint(tmp_path / "tiny.npz", model, splits=splits)
    with pytest.raises(ValueError, match="in buffer 'seen_batches'"):
        load_checkpoint(path, model_class=TinyLinear)


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory):
    model, splits = trained_tiny()
    path = save_checkpoint(tmp_path_factory.mktemp("fuzz") / "tiny.npz", model, splits=splits)
    return path.read_bytes()


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_bytes_raise_only_value_error(tmp_path, checkpoint_bytes, data):
    content = bytearray(checkpoint_bytes)
    if data.draw(st.booleans(), label="truncate"):
        content = content[:data.draw(st.integers(0, len(content) - 1), label="length")]
    else:
        for _ in range(data.draw(st.integers(1, 3), label="changed bytes")):
            position = data.draw(st.integers(0, len(content) - 1), label="position")
            content[position] = data.draw(st.integers(0, 255), label="byte")
    path = tmp_path / "damaged.npz"
    path.write_bytes(bytes(content))
    try:
        load_checkpoint(path, model_class=TinyLinear)
    except ValueError:
        pass


def test_exists_error_names_the_file(tmp_path):
    path, model = saved_tiny(tmp_path)
    with pytest.raises(FileExistsError) as caught:
        save_checkpoint(path, model, option="--overwrite")
    assert caught.value.filename == str(path)
    assert str(caught.value) == (f"checkpoint {str(path)!r} already exists; pass --overwrite "
                                 f"to replace it")
