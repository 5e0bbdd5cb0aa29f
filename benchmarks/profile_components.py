"""Per-component time of a minirec training step, for DeepFM, AFM and DIN.

Each component's ``forward`` and ``backward`` (and the optimizer's parts) is wrapped by a
timer for the duration of the run. Time is exclusive: when a timed call runs inside
another (the attention unit's MLP inside DIN's attention), the inner time is counted once,
under the inner label. The step is the one the trainer runs: zero the gradients, forward
(schema validation first), loss, backward, Adam step. "model glue" is the rest of the
models' own forward and backward code (reshapes, concatenations, sums).

Printed per model and batch size: milliseconds per step of each stage and its share.

Run:  python benchmarks/profile_components.py [--quick] [--threads 1] [--dtype float32]
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict

import _setup


class StageTimer:
    """Accumulate exclusive wall time per label over wrapped methods."""

    def __init__(self):
        self.totals = defaultdict(float)
        self._child_time = []          # one accumulator per active timed call
        self._patches = []

    def wrap(self, owner, method: str, label: str) -> None:
        """Replace ``owner.method`` (an instance or a class) by a timed version."""
        original = getattr(owner, method)
        had_own = method in vars(owner)

        def timed(*args, **kwargs):
            self._child_time.append(0.0)
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                inner = self._child_time.pop()
                self.totals[label] += elapsed - inner
                if self._child_time:
                    self._child_time[-1] += elapsed

        setattr(owner, method, timed)
        self._patches.append((owner, method, original if had_own else None))

    def restore(self) -> None:
        """Undo every wrap, newest first."""
        for owner, method, original in reversed(self._patches):
            if original is None:
                delattr(owner, method)
            else:
                setattr(owner, method, original)
        self._patches.clear()


def instrument(timer, model, trainer, classes):
    """Wrap the stages of ``model`` and its trainer; ``classes`` gives minirec's classes."""
    timer.wrap(model.schema, "validate_batch", "validation (schema)")
    timer.wrap(trainer.optimizer, "zero_grad", "zero_grad")
    timer.wrap(trainer.loss, "forward", "loss forward")
    timer.wrap(trainer.loss, "backward", "loss backward")
    timer.wrap(trainer.optimizer, "step", "optimizer: Adam update")
    timer.wrap(classes["optim"], "_gather_gradients", "optimizer: gather + finite check")
    timer.wrap(classes["SparseGrad"], "coalesce", "optimizer: coalesce sparse rows")
    for module in model.modules():
        kind = type(module).__name__
        if kind in ("FieldEmbedding", "EmbeddingBag", "Embedding"):
            label = "embedding"
            if kind == "Embedding":          # DIN reads its tables through lookup/add_grad
                timer.wrap(module, "lookup", "embedding forward")
                timer.wrap(module, "add_grad", "embedding backward")
        elif kind in ("FMInteraction", "PairwiseProducts", "AFMAttention"):
            label = "interaction"
        elif kind == "DINAttention":
            label = "attention"
        elif kind == "MLP":
            # Time each layer of an MLP on its own: Linear layers, activations, dropout.
            unit = getattr(getattr(model, "attention", None), "unit", None)
            prefix = "attention unit" if module is unit else "MLP"
            for layer in module.layers:
                for method in ("forward", "backward"):
                    timer.wrap(layer, method, f"{prefix} {type(layer).__name__} {method}")
            continue
        else:
            continue
        for method in ("forward", "backward"):
            if method in type(module).__dict__:
                timer.wrap(module, method, f"{label} {method}")


def profile(np, workloads, model_name, splits, batch_size, dtype, steps, warmup):
    """Return (ms per step by label, ms per step in total) for one model and batch size."""
    import minirec.optim
    from minirec.nn.base import SparseGrad

    model = workloads.build_model(model_name, splits.schema, dtype, random_state=0)
    trainer = workloads.MinirecTrainer(model)
    batches = workloads.fixed_batches(splits.train, batch_size, steps, random_state=1,
                                      dtype=dtype)
    for features, labels in batches[:warmup]:
        trainer.step(features, labels)

    timer = StageTimer()
    instrument(timer, model, trainer, {"optim": minirec.optim, "SparseGrad": SparseGrad})
    try:
        start = time.perf_counter()
        for features, labels in batches:
            trainer.step(features, labels)
        total = time.perf_counter() - start
    finally:
        timer.restore()
    per_step = {label: 1e3 * seconds / steps for label, seconds in timer.totals.items()}
    total_ms = 1e3 * total / steps
    per_step["model glue"] = total_ms - sum(per_step.values())
    return per_step, total_ms


def main() -> int:
    parser = _setup.make_parser(__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 4096])
    parser.add_argument("--models", nargs="+", default=["deepfm", "afm", "din"])
    args = parser.parse_args()
    settings = _setup.set_threads(args.threads)

    import numpy as np

    import _workloads as workloads

    _setup.print_machine(None)
    _setup.print_settings(settings, None)
    movielens = None if args.quick else workloads.load_movielens(args.data)
    dtype = np.dtype(args.dtype)
    examples = 4_096 if args.quick else 65_536
    for model_name in args.models:
        if movielens is not None:
            task_name, splits = "movielens", workloads.task_for_model(movielens, model_name)
        else:
            task_name, splits = "synthetic", workloads.synthetic_task(model_name,
                                                                      quick=args.quick)
            if splits is None:
                print(f"\n{model_name}: no synthetic world with sequences registered; skipped")
                continue
        for batch_size in args.batch_sizes:
            batch_size = min(batch_size, len(splits.train))
            steps = max(3, examples // batch_size // (4 if model_name == "din" else 1))
            per_step, total = profile(np, workloads, model_name, splits, batch_size, dtype,
                                      steps, warmup=min(3, steps))
            print(f"\n{model_name} on {task_name}, batch {batch_size}, {dtype}: "
                  f"{total:.2f} ms per step over {steps} steps "
                  f"({batch_size / total * 1e3:,.0f} examples/s)")
            for label, ms in sorted(per_step.items(), key=lambda item: -item[1]):
                print(f"  {label:36s} {ms:9.3f} ms {100 * ms / total:6.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
