"""Training throughput of minirec and of the PyTorch reference on the same batches.

For DeepFM, AFM and DIN, at each batch size, both sides start from the same weights and
train on the same fixed list of shuffled batches. A step is forward, mean binary
cross-entropy on logits, backward and an Adam step with lr 1e-3. minirec's Adam updates
embedding rows lazily, while ``torch.optim.Adam`` on dense gradients updates every row of
every table. After a few untimed warm-up steps, the list is timed several times
(passes), and the median pass gives examples per second. Within a pass the two sides
alternate batch by batch, so that other processes on a shared machine slow both sides
alike, which makes the ratio steadier than either rate.

Targets: minirec at least 1.5 times PyTorch's throughput at batch 256, and at least as
fast at batch 4096.

Run:  python benchmarks/throughput.py [--quick] [--threads 1] [--dtype float32]
"""

from __future__ import annotations

import sys

import _setup

TARGETS = {256: 1.5, 4096: 1.0}     # batch size -> minimum minirec / PyTorch ratio


def measure(workloads, torch_reference, model_name, splits, batch_size, dtype, *,
            steps, repeats, warmup):
    """Time both sides on the same batches.

    Returns ``{"minirec": (wall, cpu), "torch": (wall, cpu) or None}``, the median seconds
    of one pass over ``steps`` batches of ``batch_size`` rows.
    """
    model = workloads.build_model(model_name, splits.schema, dtype, random_state=0)
    trainers = {"minirec": workloads.MinirecTrainer(model)}
    if torch_reference is not None:
        reference = torch_reference.build_reference(model)
        trainers["torch"] = torch_reference.TorchTrainer(reference)
    batches = workloads.fixed_batches(splits.train, batch_size, steps, random_state=1,
                                      dtype=dtype)

    for trainer in trainers.values():
        for features, labels in batches[:warmup]:
            trainer.step(features, labels)
    steps = {side: trainer.step for side, trainer in trainers.items()}
    timings = {side: [] for side in trainers}
    for _ in range(repeats):
        for side, seconds in workloads.time_interleaved(steps, batches).items():
            timings[side].append(seconds)
    result = {"torch": None}
    for side, passes in timings.items():
        result[side] = (workloads.median(wall for wall, _ in passes),
                        workloads.median(cpu for _, cpu in passes))
    return result


def main() -> int:
    parser = _setup.make_parser(__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 4096])
    parser.add_argument("--models", nargs="+", default=["deepfm", "afm", "din"])
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed passes per side (default 5, or 2 with --quick)")
    args = parser.parse_args()
    settings = _setup.set_threads(args.threads)

    import numpy as np

    import _workloads as workloads

    torch = _setup.import_torch(args.threads)
    _setup.print_machine(torch)
    _setup.print_settings(settings, torch)
    torch_reference = None
    if torch is None:
        _setup.no_torch_message("the PyTorch column")
    else:
        import torch_reference

    dtype = np.dtype(args.dtype)
    repeats = args.repeats or (2 if args.quick else 5)
    # Examples per timed pass: enough steps that a pass takes well over a timer tick.
    examples_per_pass = 4_096 if args.quick else 40_960
    tasks = []
    if not args.quick:
        movielens = workloads.load_movielens(args.data)
        if movielens is None:
            print(f"MovieLens folder {args.data} not found; only the synthetic rows are run")
        else:
            tasks.append(("movielens", lambda name: workloads.task_for_model(movielens, name)))
    tasks.append(("synthetic",
                  lambda name: workloads.synthetic_task(name, quick=args.quick)))

    print(f"dtype {dtype}, Adam lr {workloads.LEARNING_RATE}, median of {repeats} passes "
          f"per side, each of about {examples_per_pass} examples ({examples_per_pass // 4} "
          "for DIN)")
    print("ex/s is examples per wall-clock second; 'cpu ratio' compares process CPU time")
    header = (f"{'task':10s} {'model':7s} {'batch':>6s} {'minirec ex/s':>13s} "
              f"{'torch ex/s':>11s} {'ratio':>6s} {'cpu ratio':>9s}  target")
    print(header)
    print("-" * len(header))
    verdicts = []
    for task_name, make_splits in tasks:
        for model_name in args.models:
            splits = make_splits(model_name)
            if splits is None:
                print(f"{task_name:10s} {model_name:7s} (no synthetic world for this model; "
                      "skipped)")
                continue
            examples = examples_per_pass // (4 if model_name == "din" else 1)
            for batch_size in args.batch_sizes:
                batch_size_used = min(batch_size, len(splits.train))
                steps = max(2, examples // batch_size_used)
                timing = measure(workloads, torch_reference, model_name, splits,
                                 batch_size_used, dtype, steps=steps, repeats=repeats,
                                 warmup=min(3, steps))
                rate = batch_size_used * steps / timing["minirec"][0]
                line = f"{task_name:10s} {model_name:7s} {batch_size_used:6d} {rate:13,.0f}"
                if timing["torch"] is not None:
                    torch_rate = batch_size_used * steps / timing["torch"][0]
                    ratio = rate / torch_rate
                    cpu_ratio = timing["torch"][1] / timing["minirec"][1]
                    line += f" {torch_rate:11,.0f} {ratio:6.2f} {cpu_ratio:9.2f}"
                    target = TARGETS.get(batch_size_used)
                    if target is not None:
                        line += f"  >={target:g} " + ("met" if ratio >= target else "MISSED")
                        verdicts.append(ratio >= target)
                print(line, flush=True)
    if verdicts:
        print(f"\ntargets met: {sum(verdicts)} of {len(verdicts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
