"""Acceptance of DeepFM, DIN and DIN's base model on the real MovieLens latest-small data.

The protocol is the one of benchmarks/MOVIELENS.md. A rating of 4 or more is a click, and
``movielens_click_task`` splits each user's ratings in time. Training uses embedding size
16, MLP (200, 200), Adam with learning rate 1e-3, batch 256 and at most 10 epochs, with
early stopping on validation AUC at the command's default patience. The test AUC is that of
the best validation epoch.

The AUC floors are what a widely used PyTorch CTR library reaches on this protocol, less a
small margin. The data are not shipped with minirec (their licence forbids
redistribution): the tests look in ``$MINIREC_DATA/ml-latest-small`` or ``$MINIREC_DATA``,
then in ``shared/data/ml-latest-small`` beside the checkout, and skip when neither holds
``ratings.csv``. On a 2-core machine the three runs take about a minute together.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from minirec.cli import MAX_HISTORY, main

pytestmark = [pytest.mark.movielens, pytest.mark.slow]

PROTOCOL = ["--embedding-dim", "16", "--hidden", "200,200", "--lr", "1e-3",
            "--batch-size", "256", "--epochs", "10"]
# Minimum test AUC per model (command-line name).
MIN_TEST_AUC = {"deepfm": 0.757, "din": 0.745, "din-base": 0.740}


def find_ml_latest_small() -> Path | None:
    """Return the ml-latest-small folder, or None when no candidate contains ratings.csv."""
    candidates = []
    if os.environ.get("MINIREC_DATA"):
        root = Path(os.environ["MINIREC_DATA"])
        candidates += [root / "ml-latest-small", root]
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "data"
                      / "ml-latest-small")
    return next((path for path in candidates if (path / "ratings.csv").is_file()), None)


@pytest.fixture(scope="module")
def movielens_folder() -> Path:
    folder = find_ml_latest_small()
    if folder is None:
        pytest.skip("ml-latest-small not found: set MINIREC_DATA to the folder holding it, "
                    "or place it in shared/data beside the checkout")
    return folder


@pytest.mark.parametrize("model", sorted(MIN_TEST_AUC))
def test_protocol_reaches_min_test_auc(model, movielens_folder, tmp_path):
    out = tmp_path / model
    status = main(["train", "--model", model, "--data", f"movielens:{movielens_folder}",
                   *PROTOCOL, "--out", str(out), "--quiet"])
    assert status == 0

    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    settings = metrics["settings"]
    assert settings["embedding_dim"] == 16
    assert settings["hidden"] == [200, 200]
    assert settings["lr"] == 1e-3
    assert settings["batch_size"] == 256
    assert settings["optimizer"] == "adam"
    assert metrics["epochs_run"] <= 10
    assert metrics["model_config"]["hidden"] == [200, 200]

    # The test split is scored with the weights of the best validation epoch.
    valid_aucs = [entry["valid_auc"] for entry in metrics["history"]]
    assert metrics["best_epoch"] == int(np.argmax(valid_aucs)) + 1
    assert metrics["valid"]["auc"] == max(valid_aucs)

    if model in ("din", "din-base"):
        assert metrics["data_info"]["max_history"] == MAX_HISTORY
    else:
        assert "hist_movie_id" not in metrics["data_info"]["fields"]

    auc = metrics["test"]["auc"]
    assert auc >= MIN_TEST_AUC[model], (
        f"{model}: test AUC {auc:.4f} is below {MIN_TEST_AUC[model]} "
        f"(best epoch {metrics['best_epoch']}, validation AUCs {valid_aucs})")
