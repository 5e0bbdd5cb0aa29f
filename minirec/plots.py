"""Figures for training runs and lessons, written to PNG files and never shown in a window.

Every function builds a :class:`matplotlib.figure.Figure` and draws it with the Agg canvas
directly, without pyplot, so no window opens, no global backend is changed and nothing is
left open after the call. Each returns the path of the file it wrote.

NOTE: the labels drawn inside the figures are English, because a Chinese font cannot be
assumed on every machine (Matplotlib's bundled DejaVu fonts have no CJK glyphs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _save(figure: Figure, path) -> Path:
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"folder {str(path.parent)!r} for figure {str(path)!r} does "
                                "not exist")
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=110)
    return path


def _history_column(history: Sequence[dict], key: str) -> np.ndarray:
    return np.array([entry.get(key, np.nan) for entry in history], dtype=np.float64)


def plot_training_curves(history: Sequence[dict], path, *, title: str | None = None,
                         best_epoch: int | None = None) -> Path:
    """Draw the losses (left) and the validation metric (right) per epoch into ``path``.

    ``history`` is :attr:`minirec.train.TrainResult.history`: dicts with ``epoch``,
    ``train_loss``, ``valid_loss`` and ``valid_auc`` (or ``valid_rmse`` for ratings).
    The best epoch is marked with a dashed line (default: the epoch of the best metric).
    """
    if not history:
        raise ValueError("history is empty; train at least one epoch before plotting")
    epochs = _history_column(history, "epoch")
    rating = "valid_auc" not in history[0]
    metric_key, metric_label = ("valid_rmse", "validation RMSE") if rating \
        else ("valid_auc", "validation AUC")
    metric = _history_column(history, metric_key)
    if best_epoch is None and np.isfinite(metric).any():
        best_index = np.nanargmin(metric) if rating else np.nanargmax(metric)
        best_epoch = int(epochs[best_index])

    figure = Figure(figsize=(9, 3.6))
    loss_axes, metric_axes = figure.subplots(1, 2)
    loss_axes.plot(epochs, _history_column(history, "train_loss"), "o-", label="training loss")
    loss_axes.plot(epochs, _history_column(history, "valid_loss"), "s-",
                   label="validation loss")
    loss_axes.set_xlabel("epoch")
    loss_axes.set_ylabel("MSE" if rating else "binary cross-entropy")
    loss_axes.legend()
    metric_axes.plot(epochs, metric, "o-", color="tab:green", label=metric_label)
    metric_axes.set_xlabel("epoch")
    metric_axes.set_ylabel(metric_label)
    for axes in (loss_axes, metric_axes):
        axes.grid(alpha=0.3)
        axes.set_xticks(epochs)
        if best_epoch is not None:
            axes.axvline(best_epoch, color="gray", linestyle="--", linewidth=1)
    if best_epoch is not None:
        metric_axes.legend(title=f"best epoch {best_epoch}")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return _save(figure, path)


def plot_pair_attention(weights, pair_labels: Sequence[str], path, *,
                        title: str | None = None, highlight: Sequence[str] = ()) -> Path:
    """Draw AFM's attention weight of each field pair as a bar chart into ``path``.

    ``weights`` is (P,), for example ``AFMAttention.weights`` averaged over a batch;
    ``pair_labels`` names each pair (``"f0 x f1"``); pairs in ``highlight`` (the planted
    ones of a synthetic world) are drawn in a second colour.
    """
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 1:
        raise ValueError(f"weights must have shape (P,), got {weights.shape}")
    if len(pair_labels) != weights.shape[0]:
        raise ValueError(f"pair_labels has {len(pair_labels)} names for {weights.shape[0]} "
                         "weights")
    highlight = set(highlight)
    colours = ["tab:orange" if label in highlight else "tab:blue" for label in pair_labels]

    figure = Figure(figsize=(max(4.0, 0.5 * len(pair_labels) + 1.5), 3.6))
    axes = figure.subplots()
    positions = np.arange(weights.shape[0])
    axes.bar(positions, weights, color=colours)
    axes.set_xticks(positions)
    axes.set_xticklabels(pair_labels, rotation=60, ha="right")
    axes.set_ylabel("attention weight")
    axes.grid(axis="y", alpha=0.3)
    if title:
        axes.set_title(title)
    figure.tight_layout()
    return _save(figure, path)


def plot_behaviour_attention(weights, path, *, lengths=None,
                             row_labels: Sequence[str] | None = None,
                             column_labels: Sequence[str] | None = None,
                             title: str | None = None) -> Path:
    """Draw DIN's attention over behaviour sequences as a heatmap into ``path``.

    ``weights`` is (B, T): one row per example, one column per history position, such as
    ``DINAttention.weights``. Positions at or after ``lengths`` (B,) are padding and are
    left blank.
    """
    weights = np.array(weights, dtype=np.float64)
    if weights.ndim != 2:
        raise ValueError(f"weights must have shape (B, T), got {weights.shape}")
    B, T = weights.shape
    if lengths is not None:
        lengths = np.asarray(lengths)
        if lengths.shape != (B,):
            raise ValueError(f"lengths must have shape ({B},), got {lengths.shape}")
        weights[np.arange(T)[None, :] >= lengths[:, None]] = np.nan   # (B, T)
    if row_labels is not None and len(row_labels) != B:
        raise ValueError(f"row_labels has {len(row_labels)} names for {B} rows")
    if column_labels is not None and len(column_labels) != T:
        raise ValueError(f"column_labels has {len(column_labels)} names for {T} positions")

    figure = Figure(figsize=(max(4.0, 0.45 * T + 2.0), max(2.5, 0.4 * B + 1.2)))
    axes = figure.subplots()
    image = axes.imshow(np.ma.masked_invalid(weights), aspect="auto", cmap="viridis")
    figure.colorbar(image, ax=axes, label="attention weight")
    axes.set_xlabel("history position")
    axes.set_ylabel("example")
    if column_labels is not None:
        axes.set_xticks(np.arange(T))
        axes.set_xticklabels(column_labels, rotation=60, ha="right")
    if row_labels is not None:
        axes.set_yticks(np.arange(B))
        axes.set_yticklabels(row_labels)
    if title:
        axes.set_title(title)
    figure.tight_layout()
    return _save(figure, path)


def plot_attention(weights, path, **kwargs) -> Path:
    """Draw attention weights: (P,) as a pair bar chart, (B, T) as a behaviour heatmap.

    Keyword arguments go to :func:`plot_pair_attention` (which needs ``pair_labels``) or
    :func:`plot_behaviour_attention`.
    """
    weights = np.asarray(weights)
    if weights.ndim == 1:
        if "pair_labels" not in kwargs:
            raise ValueError("pair attention (P,) needs pair_labels, one name per pair")
        return plot_pair_attention(weights, kwargs.pop("pair_labels"), path, **kwargs)
    if weights.ndim == 2:
        return plot_behaviour_attention(weights, path, **kwargs)
    raise ValueError(f"weights must have shape (P,) or (B, T), got {weights.shape}")
