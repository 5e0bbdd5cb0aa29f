"""Support for the lesson scripts: bilingual output, tensor printing, checked claims, figures.

A lesson creates one :class:`Lesson` from its command line and then calls ``say`` for
explanations, ``show`` for every intermediate tensor, ``agree`` to compare a hand
computation with the library, ``gradcheck`` to print a relative error beside the size to
expect, and ``claim`` for every statement it prints, so a lesson that stops being true
raises instead of printing something false.

The command line of every lesson is the same::

    python lessons/NN_name.py [--quick] [--lang en|zh] [--out DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .i18n import default_language

LANGUAGES = ("en", "zh")


class LessonClaimError(AssertionError):
    """Raised when a claim a lesson prints turns out false."""


class Lesson:
    """The state of one lesson run: language, quick mode and the figure folder.

    Parameters
    ----------
    name : str
        The lesson's file stem, such as ``"02_deepfm"``; figures go to ``out/name/``.
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).
    """

    def __init__(self, name: str, argv=None, *, description: str = ""):
        parser = argparse.ArgumentParser(prog=f"python lessons/{name}.py",
                                         description=description)
        parser.add_argument("--quick", action="store_true",
                            help="train on smaller data for fewer epochs (a few seconds)")
        parser.add_argument("--lang", choices=LANGUAGES, default=None,
                            help="language of the explanations (default: from the locale)")
        parser.add_argument("--out", default="lesson-figures",
                            help="folder for the PNG figures (default: lesson-figures)")
        parser.add_argument("--data", default=None,
                            help="path of a MovieLens folder, for the lessons that use one")
        args = parser.parse_args(argv)
        self.name = name
        self.quick = bool(args.quick)
        self.lang = args.lang or default_language()
        self.out = Path(args.out) / name
        self.data = args.data
        self.claims_checked = 0
        np.set_printoptions(precision=4, suppress=True, linewidth=100)

    # ----- text ---------------------------------------------------------------------------
    def text(self, en: str, zh: str) -> str:
        """Return ``en`` or ``zh`` for the lesson's language."""
        return zh if self.lang == "zh" else en

    def say(self, en: str, zh: str) -> None:
        """Print one explanation in the lesson's language."""
        print(self.text(en, zh))

    def section(self, en: str, zh: str) -> None:
        """Print a section heading."""
        title = self.text(en, zh)
        print()
        print(title)
        print("=" * max(8, len(title.encode("utf-8")) // 2 + len(title) // 2))

    def show(self, name: str, value) -> np.ndarray:
        """Print a tensor with its name and shape, and return it."""
        array = np.asarray(value)
        body = np.array2string(array, prefix="    ")
        print(f"{name}  shape={array.shape}")
        print("    " + body)
        return array

    # ----- checks -------------------------------------------------------------------------
    def claim(self, condition, en: str, zh: str) -> None:
        """Print a statement and raise LessonClaimError unless ``condition`` holds."""
        statement = self.text(en, zh)
        if not bool(condition):
            raise LessonClaimError(f"{self.name}: claim failed: {statement}")
        self.claims_checked += 1
        print(f"  [ok] {statement}")

    def agree(self, name: str, by_hand, by_library, *, rtol=1e-10, atol=1e-12) -> float:
        """Print the largest difference of two computations of ``name`` and claim they agree."""
        by_hand = np.asarray(by_hand, dtype=np.float64)
        by_library = np.asarray(by_library, dtype=np.float64)
        if by_hand.shape != by_library.shape:
            raise LessonClaimError(
                f"{self.name}: {name}: by hand {by_hand.shape} vs library {by_library.shape}"
            )
        difference = float(np.max(np.abs(by_hand - by_library))) if by_hand.size else 0.0
        self.claim(np.allclose(by_hand, by_library, rtol=rtol, atol=atol),
                   f"{name}: by hand and minirec agree (largest difference {difference:.1e})",
                   f"{name}：手算与 minirec 一致（最大差 {difference:.1e}）")
        return difference

    def gradcheck(self, result, *, tolerance: float = 1e-6) -> None:
        """Print a gradient check's worst relative error beside the size to expect."""
        self.claim(result.max_error < tolerance,
                   f"{result.name}: worst relative error {result.max_error:.1e} "
                   f"(expect below {tolerance:.0e}; a wrong gradient gives about 1) "
                   f"over {result.checked} entries",
                   f"{result.name}：最大相对误差 {result.max_error:.1e}"
                   f"（应低于 {tolerance:.0e}；梯度写错时约为 1），共检查 {result.checked} 个元素")

    # ----- figures ------------------------------------------------------------------------
    def figure_path(self, filename: str) -> Path:
        """Return the path for a figure file, creating the lesson's folder."""
        self.out.mkdir(parents=True, exist_ok=True)
        return self.out / filename

    def save_figure(self, figure, filename: str) -> Path:
        """Save a Matplotlib figure as PNG in the lesson's folder and close it."""
        import matplotlib.pyplot as plt

        path = self.figure_path(filename)
        figure.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(figure)
        self.say(f"figure written: {path}", f"图已保存：{path}")
        return path

    def done(self) -> None:
        """Print the closing line with the number of claims checked."""
        print()
        self.say(f"{self.name}: all {self.claims_checked} claims hold.",
                 f"{self.name}：全部 {self.claims_checked} 条结论成立。")


def use_agg_backend() -> None:
    """Select Matplotlib's non-interactive Agg backend, so no window ever opens."""
    import matplotlib

    matplotlib.use("Agg")
