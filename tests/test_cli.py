"""Tests of the ``minirec`` command line, mostly run in-process through ``main``."""

import json
import os
import re
import shutil
import string
import subprocess
import sys
import types
import unicodedata
import warnings
from pathlib import Path

import numpy as np
import pytest

from minirec import cli
from minirec.checkpoint import load_checkpoint, save_checkpoint
from minirec.cli import main
from minirec.i18n import MESSAGES, default_language
from minirec.nn.base import Module

REPO = Path(__file__).resolve().parents[1]
MOVIELENS = REPO.parent / "shared" / "data" / "ml-latest-small"
FAST = ["--epochs", "2", "--batch-size", "512"]


def has_chinese(text):
    return any("\u4e00" <= character <= "\u9fff" for character in text)


def assert_one_line_error(captured):
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    return lines[0]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One FM run on the synthetic click world, shared by the tests that read its outputs."""
    out = tmp_path_factory.mktemp("run")
    extra = out.parent / f"{out.name}-metrics.json"
    status = main(["train", "--model", "fm", "--out", str(out), "--metrics-json", str(extra),
                   "--quiet", *FAST])
    assert status == 0
    return out, extra


# --------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------

def test_train_writes_every_output(trained_run):
    out, extra = trained_run
    assert sorted(os.listdir(out)) == ["metrics.json", "model.npz", "training_curves.png"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert json.loads(extra.read_text()) == metrics
    assert metrics["model"] == "fm"
    assert metrics["data"] == "synthetic"
    assert metrics["data_info"]["world"] == "click"
    assert set(metrics["test"]) >= {"auc", "logloss"}
    assert 0.5 < metrics["test"]["auc"] <= 1.0
    assert metrics["best_epoch"] in (1, 2)
    assert len(metrics["history"]) == metrics["epochs_run"] == 2
    for epoch, entry in enumerate(metrics["history"], start=1):
        assert entry["epoch"] == epoch
        for key in ("train_loss", "valid_auc", "valid_logloss"):
            assert isinstance(entry[key], float), key
    assert metrics["train_seconds"] > 0
    assert metrics["train_seconds"] == pytest.approx(
        sum(entry["seconds"] for entry in metrics["history"]))
    # the synthetic click world has 16,000 training rows and both epochs ran
    assert metrics["examples_per_second"] == pytest.approx(
        2 * 16000 / metrics["train_seconds"])
    assert (out / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_checkpoint_reproduces_test_metrics(trained_run, capsys):
    out, _ = trained_run
    metrics = json.loads((out / "metrics.json").read_text())
    model, metadata = load_checkpoint(out / "model.npz")
    assert metadata["model"] == "fm"
    assert metadata["info"]["settings"]["seed"] == 0

    evaluated = out.parent / f"{out.name}-evaluate.json"
    assert main(["evaluate", "--checkpoint", str(out / "model.npz"),
                 "--metrics-json", str(evaluated)]) == 0
    printed = capsys.readouterr().out
    assert f"AUC: {metrics['test']['auc']:.4f}" in printed
    assert f"log loss: {metrics['test']['logloss']:.4f}" in printed
    assert json.loads(evaluated.read_text())["test"] == metrics["test"]


def test_train_rejects_existing_outputs(trained_run, capsys):
    out, _ = trained_run
    before = (out / "model.npz").read_bytes()
    status = main(["train", "--model", "fm", "--out", str(out), *FAST])
    line = assert_one_line_error(capsys.readouterr())
    assert status == 2
    assert "already exists" in line
    assert "--overwrite" in line
    assert (out / "model.npz").read_bytes() == before


def test_train_rejects_existing_metrics_json(tmp_path, capsys):
    existing = tmp_path / "metrics.json"
    existing.write_text("{}")
    status = main(["train", "--model", "fm", "--out", str(tmp_path / "run"),
                   "--metrics-json", str(existing), *FAST])
    assert status == 2
    line = assert_one_line_error(capsys.readouterr())
    assert line.endswith("pass --overwrite to replace it or choose another --metrics-json file")
    assert existing.read_text() == "{}"
    assert not (tmp_path / "run").exists()


def test_train_overwrite_replaces_outputs(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--model", "fm", "--out", str(out), "--quiet", "--epochs", "1"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["train", "--model", "fm", "--out", str(out), "--quiet", "--overwrite",
                 *FAST]) == 0
    assert json.loads((out / "metrics.json").read_text())["epochs_run"] == 2
    assert sorted(os.listdir(out)) == ["metrics.json", "model.npz", "training_curves.png"]


def test_train_prints_progress_and_summary(tmp_path, capsys):
    assert main(["train", "--model", "fm", "--out", str(tmp_path / "run"), *FAST]) == 0
    printed = capsys.readouterr().out
    assert "training fm on synthetic" in printed
    assert "epoch 1/2: train loss" in printed
    assert "test: AUC" in printed
    assert f"wrote {tmp_path / 'run' / 'model.npz'}" in printed


def test_train_in_chinese(tmp_path, capsys):
    assert main(["train", "--model", "fm", "--out", str(tmp_path / "run"), "--lang", "zh",
                 *FAST]) == 0
    printed = capsys.readouterr().out
    assert "第 1/2 轮" in printed
    assert "测试集" in printed
    assert "已写入" in printed


def test_chinese_locale_is_default(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LC_ALL", "")
    monkeypatch.setenv("LC_MESSAGES", "")
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    status = main(["train", "--model", "nonexistent"])
    assert status == 2
    line = assert_one_line_error(capsys.readouterr())
    assert has_chinese(line)
    assert main(["train", "--model", "fm", "--lang", "en", "--epochs", "0"]) == 2
    assert not has_chinese(capsys.readouterr().err)


def test_default_language_reads_locale_variables():
    assert default_language({"LANG": "zh_CN.UTF-8"}) == "zh"
    assert default_language({"LC_ALL": "en_US.UTF-8", "LANG": "zh_CN.UTF-8"}) == "en"
    assert default_language({"LC_MESSAGES": "zh_TW", "LANG": "C"}) == "zh"
    assert default_language({}) == "en"


def test_hidden_sets_deep_crossing_residual_widths(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--model", "deep-crossing", "--out", str(out), "--hidden", "12,6",
                 "--epochs", "1", "--batch-size", "512", "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model_config"]["residual_hidden"] == [12, 6]
    assert metrics["settings"]["hidden"] == [12, 6]
    model, _ = load_checkpoint(out / "model.npz")
    assert type(model).__name__ == "DeepCrossing"
    assert list(model.config["residual_hidden"]) == [12, 6]


def test_din_trains_with_mini_batch_aware_l2(tmp_path, capsys, monkeypatch):
    applied = []
    original = cli.default_regularizer

    steps = []

    def recording(model_name, model, train):
        regularizer = original(model_name, model, train)
        applied.append((model_name, regularizer, len(train)))
        apply = regularizer.apply
        regularizer.apply = lambda model: steps.append(1) or apply(model)
        return regularizer

    monkeypatch.setattr(cli, "default_regularizer", recording)
    out = tmp_path / "run"
    assert main(["train", "--model", "din-base", "--out", str(out), "--embedding-dim", "4",
                 "--hidden", "8", "--epochs", "1", "--batch-size", "512", "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["settings"]["mba_l2"] == cli.SEQUENCE_MBA_L2
    (name, regularizer, train_rows), = applied
    assert name == "din-base"
    assert len(steps) == -(-train_rows // 512)          # once per batch of the one epoch
    assert regularizer.strength == cli.SEQUENCE_MBA_L2
    # The synthetic interest world has three sparse fields, and item_id's table also
    # counts the valid behaviours of hist_item_id.
    assert set(regularizer.frequencies) == {
        "embedding.tables.user_id.weight", "embedding.tables.item_id.weight",
        "embedding.tables.category.weight"}


def test_models_without_history_train_without_regularizer(trained_run):
    out, _ = trained_run
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["settings"]["mba_l2"] is None


def test_fnn_trains_an_fm_first(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--model", "fnn", "--out", str(out), "--hidden", "16,8",
                 "--epochs", "1", "--batch-size", "512"]) == 0
    printed = capsys.readouterr().out
    assert printed.index("stage one") < printed.index("stage two")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["stage_one"]["model"] == "fm"
    assert len(metrics["stage_one"]["history"]) == 1
    assert metrics["train_seconds"] == pytest.approx(
        metrics["history"][0]["seconds"] + metrics["stage_one"]["train_seconds"])
    assert metrics["model_config"]["hidden"] == [16, 8]
    model, _ = load_checkpoint(out / "model.npz")
    assert type(model).__name__ == "FNN"


@pytest.mark.movielens
@pytest.mark.skipif(not MOVIELENS.is_dir(), reason="MovieLens files are not present")
def test_movielens_without_sequences_for_fm(tmp_path, capsys):
    out = tmp_path / "run"
    status = main(["train", "--model", "fm", "--data", f"movielens:{MOVIELENS}", "--out",
                   str(out), "--epochs", "1", "--batch-size", "1024"])
    assert status == 0
    printed = capsys.readouterr().out
    assert "without them" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert "gauc" in metrics["test"]
    _, metadata = load_checkpoint(out / "model.npz")
    assert not metadata["schema"].sequence_fields
    assert main(["evaluate", "--checkpoint", str(out / "model.npz")]) == 0
    assert f"AUC: {metrics['test']['auc']:.4f}" in capsys.readouterr().out


def test_libfm_files_train_and_evaluate(tmp_path, capsys):
    folder = REPO / "tests" / "fixtures" / "libfm"
    spec = "libfm:" + ",".join(str(folder / f"frappe.{part}.libfm")
                               for part in ("train", "validation", "test"))
    out = tmp_path / "run"
    assert main(["train", "--model", "fm", "--data", spec, "--out", str(out), "--epochs", "2",
                 "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data_info"]["paths"][0].endswith("frappe.train.libfm")
    _, metadata = load_checkpoint(out / "model.npz")
    assert sorted(metadata["vocabularies"]) == ["f0", "f1", "f2", "f3"]
    assert main(["evaluate", "--checkpoint", str(out / "model.npz")]) == 0
    assert f"log loss: {metrics['test']['logloss']:.4f}" in capsys.readouterr().out


# --------------------------------------------------------------------------------------
# errors: one line on standard error, exit status 2
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, text", [
    (["train", "--model", "gbdt"], "invalid choice: 'gbdt'"),
    (["train"], "the following arguments are required: --model"),
    (["train", "--model", "fm", "--epochs", "0"], "must be a positive integer, got '0'"),
    (["train", "--model", "fm", "--batch-size", "x"], "must be a positive integer, got 'x'"),
    (["train", "--model", "fm", "--lr", "-1"], "must be a positive finite number"),
    (["train", "--model", "fm", "--lr", "nan"], "must be a positive finite number"),
    (["train", "--model", "fm", "--hidden", "200,x"], "positive integers separated by commas"),
    (["train", "--model", "fm", "--seed", "-1"], "must be a non-negative integer, got '-1'"),
    (["train", "--model", "fm", "--seed", "x"], "must be a non-negative integer, got 'x'"),
    (["evaluate", "--checkpoint", "model.npz", "--seed", "3"],
     "unrecognized arguments: --seed 3 (see 'minirec evaluate -h')"),
    (["train", "--model", "fm", "--optimizer", "rmsprop"], "invalid choice: 'rmsprop'"),
    (["train", "--model", "fm", "--bogus"], "unrecognized arguments: --bogus"),
    (["train", "--model", "fm", "--data", "parquet:x"], "unknown data set 'parquet:x'"),
    (["train", "--model", "fm", "--data", "synthetic:moon"], "unknown synthetic world 'moon'"),
    (["train", "--model", "fm", "--data", "movielens:"], "needs a path after the colon"),
    (["train", "--model", "fm", "--data", "movielens:/no/such/folder"],
     "path '/no/such/folder' not found"),
    (["train", "--model", "fm", "--data", "criteo:/no/such/file.txt"], "not found"),
    (["train", "--model", "fm", "--data", "libfm:/no/train.libfm,/no/valid.libfm"],
     "path '/no/train.libfm' not found"),
    (["train", "--model", "fm", "--hidden", "8"], "model 'fm' does not take --hidden"),
    (["evaluate", "--checkpoint", "/no/such/model.npz"], "cannot load checkpoint"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    ([], "the following arguments are required"),
])
def test_bad_input_exits_2_with_one_line(argv, text, capsys):
    status = main(argv + ["--lang", "en"] if argv else argv)
    line = assert_one_line_error(capsys.readouterr())
    assert status == 2
    assert text in line


def test_folder_without_movielens_files(tmp_path, capsys):
    (tmp_path / "readme.txt").write_text("nothing here")
    status = main(["train", "--model", "fm", "--data", f"movielens:{tmp_path}", "--lang", "en"])
    line = assert_one_line_error(capsys.readouterr())
    assert status == 2
    assert line.startswith("minirec: error: could not read MovieLens data from")


def test_errors_in_chinese(capsys):
    assert main(["train", "--model", "gbdt", "--lang", "zh"]) == 2
    line = assert_one_line_error(capsys.readouterr())
    assert "无效的选择" in line
    assert main(["train", "--model", "fm", "--data", "movielens:/no/such", "--lang", "zh"]) == 2
    line = assert_one_line_error(capsys.readouterr())
    assert line == "minirec：错误：找不到路径 '/no/such'"


def test_help_in_chinese(capsys):
    assert main(["train", "--help", "--lang", "zh"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("用法：minirec train")
    assert "最多训练的轮数（默认 10）" in printed


def test_evaluate_rejects_different_vocabularies(trained_run, tmp_path, capsys):
    from minirec.data.vocab import Vocabulary

    out, _ = trained_run
    model, _ = load_checkpoint(out / "model.npz")
    path = tmp_path / "other.npz"
    save_checkpoint(path, model, vocabularies={"f0": Vocabulary(["a", "b"], name="f0")},
                    info={"data": "synthetic", "settings": {"seed": 0}})
    status = main(["evaluate", "--checkpoint", str(path), "--lang", "en"])
    line = assert_one_line_error(capsys.readouterr())
    assert status == 2
    assert "vocabularies" in line
    assert "f0" in line


def test_evaluate_rejects_different_fields(trained_run, capsys):
    out, _ = trained_run
    status = main(["evaluate", "--checkpoint", str(out / "model.npz"), "--data",
                   "synthetic:interest", "--lang", "en"])
    assert status == 2
    assert assert_one_line_error(capsys.readouterr()).startswith("minirec: error:")


def test_training_failure_exits_1(tmp_path, capsys, monkeypatch):
    from minirec import train

    def diverging_fit(*args, **kwargs):
        raise train.TrainingError(1, 7, "loss", "loss = nan")

    monkeypatch.setattr(train, "fit", diverging_fit)
    status = main(["train", "--model", "fm", "--out", str(tmp_path / "run"), "--lang", "en"])
    line = assert_one_line_error(capsys.readouterr())
    assert status == 1
    assert "non-finite loss at epoch 1, step 7" in line


def bad_checkpoint(kind, run_folder, tmp_path):
    """Return the path of a checkpoint damaged in the way ``kind`` names."""
    source = run_folder / "model.npz"
    path = tmp_path / "model.npz"
    if kind == "truncated":
        path.write_bytes(source.read_bytes()[:2000])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "flipped":
        data = bytearray(source.read_bytes())
        position = data.rfind(b"weight/")      # the central directory's copy of a name
        data[position:position + 3] = b"XYZ"
        path.write_bytes(bytes(data))
    elif kind == "text":
        path = tmp_path / "notes.txt"
        path.write_text("not a checkpoint\n")
    elif kind == "metrics":
        path = run_folder / "metrics.json"
    elif kind == "folder":
        path = run_folder
    elif kind == "config":
        model, metadata = load_checkpoint(source)
        save_checkpoint(path, model, config={**model.config, "hidden": [8]},
                        info=metadata["info"])
    elif kind == "json":
        with np.load(source, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
        arrays["meta/config"] = np.array('{"embedding_dim": ')
        np.savez(path, **arrays)
    elif kind == "nan":
        model, metadata = load_checkpoint(source)
        name, value, _ = next(iter(model.parameters()))
        value.flat[-1] = np.nan
        save_checkpoint(path, model, info=metadata["info"])
    return path


@pytest.mark.parametrize("kind, text", [
    ("truncated", "is damaged or truncated"),
    ("empty", "is empty (0 bytes)"),
    ("flipped", "is damaged or truncated"),
    ("text", "notes.txt' is not a minirec checkpoint (.npz) file"),
    ("metrics", "metrics.json' is not a minirec checkpoint (.npz) file"),
    ("folder", "is a folder, not a checkpoint file; pass"),
    ("config", "does not match model 'fm'"),
    ("json", "invalid JSON in 'meta/config'"),
    ("nan", "NaN or infinite value(s) in parameter"),
])
def test_evaluate_bad_checkpoint_exits_2(trained_run, tmp_path, capsys, kind, text):
    path = bad_checkpoint(kind, trained_run[0], tmp_path)
    status = main(["evaluate", "--checkpoint", str(path), "--lang", "en"])
    line = assert_one_line_error(capsys.readouterr())
    assert status == 2
    assert line.startswith("minirec: error: cannot load checkpoint: ")
    assert text in line
    assert "pickle" not in line


def test_model_too_large_for_memory_exits_2(tmp_path, monkeypatch, capsys):
    def huge_model(schema, *, embedding_dim=8, hidden=(8,), random_state=None):
        raise MemoryError("Unable to allocate 74.5 GiB for an array with shape "
                          "(100000, 100000) and data type float64")

    monkeypatch.setattr(cli, "_model_class", lambda name: huge_model)
    status = main(["train", "--model", "deepfm", "--embedding-dim", "100000000", "--hidden",
                   "100000,100000", "--out", str(tmp_path / "run"), "--lang", "en"])
    line = assert_one_line_error(capsys.readouterr())
    assert status == 2
    assert ("model 'deepfm' with --embedding-dim 100000000 --hidden 100000,100000 does not "
            "fit in memory") in line
    assert "74.5 GiB" in line


def test_training_out_of_memory_exits_2(tmp_path, monkeypatch, capsys):
    from minirec import train

    def fit_out_of_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate 9.0 GiB")

    monkeypatch.setattr(train, "fit", fit_out_of_memory)
    status = main(["train", "--model", "fm", "--batch-size", "100000000", "--out",
                   str(tmp_path / "run"), "--lang", "en"])
    line = assert_one_line_error(capsys.readouterr())
    assert status == 2
    assert "model 'fm' with --batch-size 100000000 does not fit in memory" in line


def test_huge_learning_rate_fails_without_numpy_warnings(tmp_path, capsys):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status = main(["train", "--model", "fm", "--lr", "1e300", "--out", str(tmp_path / "run"),
                       "--quiet", "--lang", "en"])
    line = assert_one_line_error(capsys.readouterr())
    assert status == 1
    assert "non-finite" in line
    assert [str(warning.message) for warning in caught
            if issubclass(warning.category, RuntimeWarning)] == []


def test_evaluate_rejects_existing_metrics_json(trained_run, capsys):
    out, extra = trained_run
    before = extra.read_text()
    status = main(["evaluate", "--checkpoint", str(out / "model.npz"), "--metrics-json",
                   str(extra), "--lang", "en"])
    line = assert_one_line_error(capsys.readouterr())
    assert status == 2
    assert line.endswith("pass --overwrite to replace it or choose another --metrics-json file")
    assert "--out" not in line
    assert extra.read_text() == before


def test_metrics_json_folders_are_created(tmp_path, monkeypatch, capsys):
    # the README's command, run in an empty folder
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--model", "fm", "--out", "runs/fm", "--metrics-json", "runs/fm.json",
                 "--quiet", "--epochs", "1"]) == 0
    assert json.loads((tmp_path / "runs" / "fm.json").read_text())["model"] == "fm"
    assert main(["evaluate", "--checkpoint", "runs/fm/model.npz", "--metrics-json",
                 "reports/fm/test.json"]) == 0
    assert json.loads((tmp_path / "reports" / "fm" / "test.json").read_text())["model"] == "fm"


def test_checkpoint_records_absolute_data_paths(tmp_path, monkeypatch, capsys):
    data = tmp_path / "project" / "data"
    data.mkdir(parents=True)
    parts = ("train", "validation", "test")
    for part in parts:
        shutil.copy(REPO / "tests" / "fixtures" / "libfm" / f"frappe.{part}.libfm", data)
    monkeypatch.chdir(tmp_path / "project")
    spec = "libfm:" + ",".join(f"data/frappe.{part}.libfm" for part in parts)
    assert main(["train", "--model", "fm", "--data", spec, "--out", "run", "--epochs", "1",
                 "--quiet"]) == 0
    _, metadata = load_checkpoint(tmp_path / "project" / "run" / "model.npz")
    assert metadata["info"]["data"] == "libfm:" + ",".join(
        str((data / f"frappe.{part}.libfm").resolve()) for part in parts)

    # evaluate from another folder finds the data through the absolute paths
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "--checkpoint", "project/run/model.npz"]) == 0
    capsys.readouterr()

    shutil.move(data, tmp_path / "moved")
    status = main(["evaluate", "--checkpoint", "project/run/model.npz", "--lang", "en"])
    line = assert_one_line_error(capsys.readouterr())
    assert status == 2
    assert "of the data set recorded in the checkpoint" in line
    assert "not found; pass --data" in line
    moved = "libfm:" + ",".join(f"moved/frappe.{part}.libfm" for part in parts)
    assert main(["evaluate", "--checkpoint", "project/run/model.npz", "--data", moved]) == 0


def test_default_out_dir_gets_a_number_when_taken(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli.time, "strftime", lambda fmt, *rest: "20240102-030405")
    first = tmp_path / "runs" / "fm-synthetic-click-20240102-030405"
    first.mkdir(parents=True)
    for suffix in ("-2", "-3"):
        assert main(["train", "--model", "fm", "--quiet", "--epochs", "1"]) == 0
        assert (first.parent / (first.name + suffix) / "model.npz").is_file()
    assert list(first.iterdir()) == []


def test_default_out_dir_taken_during_setup(tmp_path, monkeypatch, capsys):
    # Another run started in the same second creates the chosen folder after this run chose
    # it and before this run creates it. This run then moves on to the next name.
    monkeypatch.chdir(tmp_path)
    choose = cli._default_out_dir

    def chosen_then_taken(*args):
        folder = choose(*args)
        folder.mkdir(parents=True)
        return folder

    monkeypatch.setattr(cli, "_default_out_dir", chosen_then_taken)
    assert main(["train", "--model", "fm", "--quiet", "--epochs", "1"]) == 0
    folders = sorted((tmp_path / "runs").iterdir())
    assert len(folders) == 2
    assert list(folders[0].iterdir()) == []
    assert folders[1].name == folders[0].name + "-2"
    assert (folders[1] / "model.npz").is_file()


@pytest.mark.parametrize("target, option", [("model.npz", "--out"),
                                            ("extra.json", "--metrics-json file")])
def test_output_created_during_training(tmp_path, monkeypatch, capsys, target, option):
    out = tmp_path / "run"
    path = out / target
    original_fit = cli._fit

    def fit_while_another_run_writes(*args):
        result = original_fit(*args)
        path.write_text("the other run")
        return result

    monkeypatch.setattr(cli, "_fit", fit_while_another_run_writes)
    status = main(["train", "--model", "fm", "--out", str(out), "--metrics-json",
                   str(out / "extra.json"), "--quiet", "--epochs", "1", "--lang", "en"])
    line = assert_one_line_error(capsys.readouterr())
    assert status == 2
    assert line == (f"minirec: error: {str(path)!r} already exists; pass --overwrite to "
                    f"replace it or choose another {option}")
    assert path.read_text() == "the other run"


def test_evaluate_labels_metrics_as_train_does(trained_run, capsys):
    out, _ = trained_run
    test = json.loads((out / "metrics.json").read_text())["test"]
    assert main(["evaluate", "--checkpoint", str(out / "model.npz"), "--lang", "zh"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:] == [f"  损失：{test['loss']:.4f}", f"  AUC：{test['auc']:.4f}",
                         f"  对数损失：{test['logloss']:.4f}"]
    assert main(["evaluate", "--checkpoint", str(out / "model.npz"), "--lang", "en"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:] == [f"  loss: {test['loss']:.4f}", f"  AUC: {test['auc']:.4f}",
                         f"  log loss: {test['logloss']:.4f}"]


# --------------------------------------------------------------------------------------
# gradcheck
# --------------------------------------------------------------------------------------

class Scale(Module):
    """y = w * x with a deliberately wrong backward when ``wrong`` is set."""

    def __init__(self, wrong=False):
        super().__init__()
        self.wrong = wrong
        self.add_param("w", np.array([1.5, -0.5]))

    def forward(self, x):
        self._x = x
        return self.params["w"] * x

    def backward(self, dout):
        self.grads["w"] += dout * self._x
        return dout * self.params["w"] * (2.0 if self.wrong else 1.0)


def install_case_module(monkeypatch, name, cases):
    module = types.ModuleType(name)
    module.gradcheck_cases = lambda: cases
    monkeypatch.setitem(sys.modules, name, module)


def test_gradcheck_passes_and_lists_missing_files(monkeypatch, capsys):
    x = np.array([0.3, 2.0])
    install_case_module(monkeypatch, "fake_cases_good", [
        ("Scale", Scale(), [x.copy()], {}),
        ("Scale(small step)", Scale(), [x.copy()], {"eps": 1e-6}),
    ])
    monkeypatch.setattr(cli, "CASE_MODULES", ("fake_cases_good", "fake_cases_absent"))
    assert main(["gradcheck", "--lang", "en"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "case file(s) not found, skipped: fake_cases_absent"
    rows = [line for line in lines if line.startswith("Scale")]
    assert len(rows) == 2
    # 2 parameter entries and 2 input entries per case
    assert rows[0].split()[1:4] == [rows[0].split()[1], "4", "ok"]
    assert float(rows[0].split()[1]) < 1e-6
    assert lines[-1].startswith("all 2 checks passed")


def test_gradcheck_fails_on_wrong_backward(monkeypatch, capsys):
    x = np.array([0.3, 2.0])
    install_case_module(monkeypatch, "fake_cases_mixed", [
        ("Scale", Scale(), [x.copy()], {}),
        ("Scale(wrong)", Scale(wrong=True), [x.copy()], {}),
    ])
    monkeypatch.setattr(cli, "CASE_MODULES", ("fake_cases_mixed",))
    assert main(["gradcheck", "--lang", "en"]) == 1
    output = capsys.readouterr().out
    wrong_row = next(line for line in output.splitlines() if line.startswith("Scale(wrong)"))
    assert "FAIL" in wrong_row
    assert "input:0" in wrong_row
    assert "1 of 2 checks failed" in output

    assert main(["gradcheck", "--only", "scale(WRONG", "--lang", "zh"]) == 1
    assert "失败" in capsys.readouterr().out
    assert main(["gradcheck", "--only", "Linear", "--lang", "en"]) == 2
    assert "no case name starts with 'Linear'" in assert_one_line_error(capsys.readouterr())


def test_gradcheck_only_matches_name_start_ignoring_case(monkeypatch, capsys):
    names = ["Embedding", "EmbeddingBag(sum)", "FieldEmbedding", "DIN(dice)",
             "DINAttention(sigmoid)", "DINBase(prelu)", "MLP(relu)"]
    x = np.array([0.3, 2.0])
    install_case_module(monkeypatch, "fake_cases_named",
                        [(name, Scale(), [x.copy()], {}) for name in names])
    monkeypatch.setattr(cli, "CASE_MODULES", ("fake_cases_named",))
    for only, expected in [("din", ["DIN(dice)", "DINAttention(sigmoid)", "DINBase(prelu)"]),
                           ("embedding", ["Embedding", "EmbeddingBag(sum)"]),
                           ("EMBEDDINGBAG", ["EmbeddingBag(sum)"]),
                           ("din(DICE", ["DIN(dice)"])]:
        assert main(["gradcheck", "--only", only, "--lang", "en"]) == 0
        rows = capsys.readouterr().out.splitlines()[1:-1]
        assert [row.split()[0] for row in rows] == expected, only

    status = main(["gradcheck", "--only", "gbdt", "--lang", "en"])
    line = assert_one_line_error(capsys.readouterr())
    assert status == 2
    assert "no case name starts with 'gbdt'" in line
    assert line.endswith("Embedding, EmbeddingBag, FieldEmbedding, DIN, DINAttention, DINBase, "
                         "MLP")


def terminal_width(text):
    return sum(2 if unicodedata.east_asian_width(character) in "WF" else 1
               for character in text)


def column_spans(line):
    """Return (start, end) terminal columns of the cells of a row (cells are 2+ spaces apart)."""
    return [(terminal_width(line[:cell.start()]), terminal_width(line[:cell.end()]))
            for cell in re.finditer(r"\S+(?: \S+)*", line)]


def test_gradcheck_table_lines_up_in_chinese(monkeypatch, capsys):
    x = np.array([0.3, 2.0])
    install_case_module(monkeypatch, "fake_cases_zh", [
        ("Scale", Scale(), [x.copy()], {}),
        ("Scale(wrong)", Scale(wrong=True), [x.copy()], {}),
    ])
    monkeypatch.setattr(cli, "CASE_MODULES", ("fake_cases_zh",))
    assert main(["gradcheck", "--lang", "zh"]) == 1
    lines = capsys.readouterr().out.splitlines()
    header, rows = lines[0], [line for line in lines if line.startswith("Scale")]
    assert header.startswith("用例")
    assert len(rows) == 2
    spans = [column_spans(line) for line in [header, *rows]]
    for cells in spans:
        assert len(cells) == 5, cells
    # name, result and worst entry are left-aligned; error and count are right-aligned
    for column, side in [(0, 0), (1, 1), (2, 1), (3, 0), (4, 0)]:
        assert len({cells[column][side] for cells in spans}) == 1, (column, spans)


def test_gradcheck_reports_broken_case_file(monkeypatch, capsys):
    module = types.ModuleType("fake_cases_broken")

    def gradcheck_cases():
        raise RuntimeError("shape mismatch while building cases")

    module.gradcheck_cases = gradcheck_cases
    monkeypatch.setitem(sys.modules, "fake_cases_broken", module)
    install_case_module(monkeypatch, "fake_cases_fine",
                        [("Scale", Scale(), [np.array([1.0, 2.0])], {})])
    monkeypatch.setattr(cli, "CASE_MODULES", ("fake_cases_fine", "fake_cases_broken"))
    assert main(["gradcheck", "--lang", "en"]) == 1
    captured = capsys.readouterr()
    assert "fake_cases_broken could not be loaded" in captured.err
    assert "1 of 2 checks failed" in captured.out


def test_gradcheck_on_the_project_cases(capsys):
    cases, missing, broken = cli.collect_gradcheck_cases()
    if not cases:
        pytest.skip("no gradient-check case files are written yet")
    assert broken == []
    assert main(["gradcheck", "--lang", "en"]) == 0
    output = capsys.readouterr().out
    for name, *_ in cases:
        assert any(line.startswith(name + " ") for line in output.splitlines()), name


# --------------------------------------------------------------------------------------
# lessons
# --------------------------------------------------------------------------------------

def test_lessons_lists_titles(tmp_path, monkeypatch, capsys):
    (tmp_path / "01_fm.py").write_text(
        'TITLE_EN = "Factorization machines"\nTITLE_ZH = "因子分解机"\n'
        'raise SystemExit("a lesson must not run when listed")\n', encoding="utf-8")
    (tmp_path / "02_din.py").write_text('TITLE_EN = "Deep Interest Network"\n')
    (tmp_path / "03_draft.py").write_text("x = 1\n")
    (tmp_path / "_helpers.py").write_text('TITLE_EN = "not a lesson"\n')
    monkeypatch.setattr(cli, "lessons_folder", lambda: tmp_path)

    assert main(["lessons", "--lang", "en"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split(None, 1) == ["01_fm.py", "Factorization machines"]
    assert lines[2].split(None, 1) == ["02_din.py", "Deep Interest Network"]
    assert lines[3].split(None, 1) == ["03_draft.py", "(no title)"]
    assert not any("_helpers" in line for line in lines)

    assert main(["lessons", "--lang", "zh"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split(None, 1) == ["01_fm.py", "因子分解机"]
    # a lesson without a Chinese title falls back to the English one
    assert lines[2].split(None, 1) == ["02_din.py", "Deep Interest Network"]


def test_lessons_without_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "lessons_folder", lambda: tmp_path / "lessons")
    assert main(["lessons", "--lang", "en"]) == 1
    assert "no lessons folder" in capsys.readouterr().err


def test_lessons_folder_is_next_to_the_package():
    assert cli.lessons_folder() == REPO / "lessons"


def test_lessons_into_a_closed_pipe_exit_quietly():
    environment = dict(os.environ, LANG="C.UTF-8", LC_ALL="", LC_MESSAGES="")
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        completed = subprocess.run([sys.executable, "-m", "minirec", "lessons"],
                                   stdout=write_end, stderr=subprocess.PIPE, text=True,
                                   cwd=REPO, env=environment, timeout=60)
    finally:
        os.close(write_end)
    assert completed.stderr == ""
    assert completed.returncode == 1


# --------------------------------------------------------------------------------------
# message catalogue and the installed command
# --------------------------------------------------------------------------------------

def test_messages_match_across_languages():
    formatter = string.Formatter()
    for key, entry in MESSAGES.items():
        assert set(entry) == {"en", "zh"}, key
        fields = [{name for _, name, _, _ in formatter.parse(entry[lang]) if name}
                  for lang in ("en", "zh")]
        assert fields[0] == fields[1], key
        # English words outside the fields and acronyms need a Chinese translation
        literal = "".join(text for text, _, _, _ in formatter.parse(entry["en"]))
        for acronym in ("GAUC", "AUC", "RMSE", "MAE"):
            literal = literal.replace(acronym, "")
        if any(character.isalpha() for character in literal):
            assert has_chinese(entry["zh"]), key


def test_python_dash_m_runs_in_a_subprocess(tmp_path):
    out = tmp_path / "run"
    environment = dict(os.environ, LANG="C.UTF-8", LC_ALL="", LC_MESSAGES="")
    completed = subprocess.run(
        [sys.executable, "-m", "minirec", "train", "--model", "fm", "--epochs", "1",
         "--batch-size", "1024", "--out", str(out), "--metrics-json",
         str(tmp_path / "m.json")],
        capture_output=True, text=True, cwd=REPO, env=environment, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert "test: AUC" in completed.stdout
    assert json.loads((tmp_path / "m.json").read_text())["model"] == "fm"

    completed = subprocess.run([sys.executable, "-m", "minirec", "train", "--model", "gbdt"],
                               capture_output=True, text=True, cwd=REPO, env=environment,
                               timeout=60)
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1
