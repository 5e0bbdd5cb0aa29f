"""Check that one training step of minirec and of the PyTorch reference gives the same weights.

For DeepFM, AFM and DIN, in float32 and float64, the script builds the minirec model and
copies its initial weights into the PyTorch reference (``torch_reference.py``). Both
sides then run one step on the same batch: forward, mean binary cross-entropy on logits,
backward and an Adam step with lr 1e-3. Printed per parameter: the largest absolute
difference of the parameter after the step and of the gradient, also relative to the
largest gradient entry.

Targets: every parameter after the step within 1e-5 (float32) or 1e-10 (float64), and
(added here) every gradient within 1e-5 (float32) or 1e-10 (float64) relative to the
largest entry of its parameter's gradient. The gradients are compared because Adam's
first step is about ``lr * sign(g)``, which would hide a wrong gradient of the right sign.

On the first step both optimizers agree in exact arithmetic: minirec's lazy Adam updates
the rows present in the batch, and PyTorch's dense Adam leaves every other row unchanged
because its gradient and both moments are still 0.

In float32 there is one exception, reported rather than hidden. The first Adam update of
an entry is ``u(g) = lr * g / (|g| + eps)``, whose slope ``lr * eps / (|g| + eps)^2`` is
``lr / eps = 1e5`` near ``g = 0``. An entry whose gradient cancels to about ``eps = 1e-8``
(a first-order weight seen as often in clicks as in non-clicks while every prediction is
still 0.5) turns a float32 rounding difference of 1e-9 in ``g`` into a 1e-5-sized
difference in the weight. Such an entry counts as "explained" when its difference is at
most the tolerance plus ``lr * eps * |g_ours - g_torch| / (min(|g_ours|, |g_torch|) + eps)^2``
(or ``2 * lr`` when the two gradients differ in sign), and its gradients agree to the
gradient tolerance. Any other difference fails.

Run:  python benchmarks/equivalence.py [--quick] [--batch-size 256]
The exit status is 1 if a target is missed beyond that explanation, 0 otherwise (also
when PyTorch is missing).
"""

from __future__ import annotations

import sys

import _setup

TOLERANCE = {"float32": 1e-5, "float64": 1e-10}
ADAM_EPS = 1e-8            # torch.optim.Adam's default, and minirec Adam's


def rounding_bound(np, grad_ours, grad_theirs, lr):
    """Return per entry how far the first Adam update can move when g changes as observed."""
    smaller = np.minimum(np.abs(grad_ours), np.abs(grad_theirs))
    slope_bound = lr * ADAM_EPS * np.abs(grad_ours - grad_theirs) / (smaller + ADAM_EPS) ** 2
    signs_differ = np.sign(grad_ours) * np.sign(grad_theirs) < 0
    return np.where(signs_differ, 2 * lr, slope_bound)


def compare_one_step(np, torch_reference, model_name, splits, dtype_name, batch_size):
    """Run one step of ``model_name`` on both sides and return the differences.

    Returns a dict with ``logits`` and ``loss``, the largest absolute differences before
    the step, and ``rows`` with one tuple per parameter: name, entries, largest parameter
    difference, entries above the tolerance, how many of those gradient rounding does not
    explain, largest gradient difference, and that difference relative to the largest
    gradient entry.
    """
    from _workloads import LEARNING_RATE, MinirecTrainer, build_model, fixed_batches

    torch = torch_reference.torch
    dtype = np.dtype(dtype_name)
    tolerance = TOLERANCE[dtype_name]
    model = build_model(model_name, splits.schema, dtype, random_state=0)
    reference = torch_reference.build_reference(model)
    features, labels = fixed_batches(splits.train, batch_size, 1, random_state=1,
                                     dtype=dtype)[0]

    # 1. minirec: forward, loss, backward, keep the gradients, Adam step
    ours = MinirecTrainer(model, lr=LEARNING_RATE)
    logits_ours = model.forward(features)
    loss_ours = ours.loss.forward(logits_ours, labels)
    model.backward(ours.loss.backward())
    grads_ours = {name: grad.to_dense() if hasattr(grad, "to_dense") else grad.copy()
                  for name, _, grad in model.parameters()}
    ours.optimizer.step()

    # 2. PyTorch: the same on the copied weights
    theirs = torch_reference.TorchTrainer(reference, lr=LEARNING_RATE)
    logits_theirs = reference(torch_reference.to_torch(features))
    loss_theirs = torch.nn.functional.binary_cross_entropy_with_logits(
        logits_theirs, torch.from_numpy(labels))
    loss_theirs.backward()
    theirs.optimizer.step()

    # 3. differences
    result = {
        "logits": float(np.max(np.abs(logits_ours - logits_theirs.detach().numpy()))),
        "loss": abs(loss_ours - loss_theirs.item()),
        "rows": [],
    }
    torch_params = dict(reference.named_parameters())
    for name, value, _ in model.parameters():
        grad_theirs = torch_params[name].grad.numpy()
        param_theirs = torch_params[name].detach().numpy()
        difference = np.abs(value - param_theirs)
        grad_gap = np.abs(grads_ours[name] - grad_theirs)
        scale = float(np.max(np.abs(grad_theirs)))
        above = difference > tolerance
        # Explained: the gradients agree to the relative tolerance, and the update's slope
        # near this gradient turns that small gap into the observed weight difference.
        explained = (grad_gap <= tolerance * scale) & (difference <= tolerance + rounding_bound(
            np, grads_ours[name], grad_theirs, LEARNING_RATE))
        grad_difference = float(np.max(grad_gap))
        result["rows"].append((
            name, value.size, float(difference.max()), int(above.sum()),
            int((above & ~explained).sum()), grad_difference,
            grad_difference / scale if scale else grad_difference,
        ))
    return result


def report(model_name, task_name, dtype_name, batch_size, result) -> list[str]:
    """Print one comparison and return the list of targets it missed."""
    tolerance = TOLERANCE[dtype_name]
    missed = []
    print(f"\n{model_name} on {task_name}, {dtype_name}, batch {batch_size} "
          f"(tolerance {tolerance:.0e}); before the step the logits differ by "
          f"{result['logits']:.2e} and the loss by {result['loss']:.2e}")
    print(f"  {'parameter':36s} {'entries':>8s} {'max |dw|':>9s} {'>tol':>5s} "
          f"{'unexpl.':>7s} {'max |dg|':>9s} {'dg rel':>9s}")
    for name, size, worst, above, unexplained, grad_difference, relative in result["rows"]:
        print(f"  {name:36s} {size:8d} {worst:9.2e} {above:5d} {unexplained:7d} "
              f"{grad_difference:9.2e} {relative:9.2e}")
        if unexplained:
            missed.append(f"{model_name}/{task_name}/{dtype_name} {name}: weights differ")
        if relative > tolerance:
            missed.append(f"{model_name}/{task_name}/{dtype_name} {name}: gradients differ")
    above = sum(row[3] for row in result["rows"])
    worst = max(row[2] for row in result["rows"])
    if not above:
        print(f"  parameters after the step: target met (largest difference {worst:.2e})")
    else:
        print(f"  parameters after the step: target missed on {above} entries (largest "
              f"difference {worst:.2e}); 'unexpl.' counts those not explained by float32 "
              "rounding of a near-zero gradient")
    return missed


def main() -> int:
    parser = _setup.make_parser(__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    settings = _setup.set_threads(args.threads)

    import numpy as np

    import _workloads

    torch = _setup.import_torch(args.threads)
    _setup.print_machine(torch)
    _setup.print_settings(settings, torch)
    if torch is None:
        _setup.no_torch_message("the comparison with PyTorch")
        return 0
    import torch_reference

    movielens = None if args.quick else _workloads.load_movielens(args.data)
    missed = []
    for model_name in _workloads.MODELS:
        tasks = []
        if movielens is not None:
            tasks.append(("movielens", _workloads.task_for_model(movielens, model_name)))
        synthetic = _workloads.synthetic_task(model_name, quick=True)
        if synthetic is not None:
            tasks.append(("synthetic", synthetic))
        for task_name, splits in tasks:
            batch_size = min(args.batch_size, len(splits.train))
            for dtype_name in ("float32", "float64"):
                result = compare_one_step(np, torch_reference, model_name, splits,
                                          dtype_name, batch_size)
                missed += report(model_name, task_name, dtype_name, batch_size, result)
    print()
    if missed:
        print("targets missed:\n  " + "\n  ".join(missed))
        return 1
    print("all targets met, apart from the float32 entries explained above (if any)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
