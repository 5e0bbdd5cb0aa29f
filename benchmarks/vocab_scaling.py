"""Time of one DeepFM training step as the embedding table grows from 10^3 to 10^7 rows.

The model is DeepFM on four sparse fields whose vocabularies add up to the table size
(one shared table of N rows and K = 8 columns, plus the first-order table of N rows), in
float32. Ids are drawn uniformly, so a batch touches rows all over the table. Each size
runs in a fresh subprocess, so a 10^7-row table (320 MB for the vectors, about 1.2 GB
with Adam's moments and step counts) is freed before the next size starts.

Printed per size: the first step (which allocates Adam's table-sized state once), and
the median of the following steps in wall-clock and CPU time. minirec runs each size
several times, the sizes taking turns, and keeps the fastest run, so that a busy spell
on a shared machine does not decide the ratio. minirec's Adam updates only the rows in the batch, so
the steady step should not depend on N. Target: median step at 10^7 rows within 1.3
times the step at 10^3 rows. With PyTorch installed, the same step of the reference
(dense gradients, ``torch.optim.Adam``) is printed beside it for comparison.

Also printed: the distinct rows a step updates in each table (a 10^3-row table repeats
ids within a batch of 256, so it updates fewer rows than a large one) and the time per
distinct row, which separates the cost of the table size from the amount of work.

Run:  python benchmarks/vocab_scaling.py [--quick] [--threads 1] [--batch-size 256]
"""

from __future__ import annotations

import json
import subprocess
import sys

import _setup

SIZES = (10**3, 10**5, 10**7)
QUICK_SIZES = (10**3, 10**5)
TARGET = 1.3
NUM_FIELDS = 4


def run_one(rows: int, batch_size: int, steps: int, threads: int, side: str) -> dict:
    """Build a table of ``rows`` rows, time ``steps`` steps on one side; return the timings."""
    import time

    import numpy as np

    import _workloads as workloads
    from minirec.data.schema import SPARSE, Field, Schema

    sizes = [rows // NUM_FIELDS] * NUM_FIELDS
    sizes[0] += rows - sum(sizes)                 # the fields add up to exactly `rows`
    schema = Schema([Field(f"f{i}", SPARSE, size) for i, size in enumerate(sizes)])
    rng = np.random.default_rng(0)
    batches = []
    for _ in range(steps + 1):
        features = {f"f{i}": rng.integers(0, size, batch_size) for i, size in enumerate(sizes)}
        batches.append((features, rng.integers(0, 2, batch_size).astype(np.float32)))

    model = workloads.build_model("deepfm", schema, np.float32, random_state=0)
    if side == "minirec":
        trainer = workloads.MinirecTrainer(model)
    else:
        torch = _setup.import_torch(threads)
        import torch_reference
        trainer = torch_reference.TorchTrainer(torch_reference.build_reference(model))
        del torch
    table_bytes = int(sum(value.nbytes for _, value, _ in model.parameters()))

    timings, cpu_timings = [], []
    for features, labels in batches:
        start, cpu_start = time.perf_counter(), time.process_time()
        trainer.step(features, labels)
        timings.append(time.perf_counter() - start)
        cpu_timings.append(time.process_time() - cpu_start)
    # Distinct rows per batch and table: each field has its own rows, so the counts add up.
    distinct = [sum(np.unique(ids).size for ids in features.values()) for features, _ in batches]
    return {"first": timings[0], "median": float(np.median(timings[1:])),
            "cpu_median": float(np.median(cpu_timings[1:])), "parameter_bytes": table_bytes,
            "distinct_rows": float(np.median(distinct))}


def measure(rows, batch_size, steps, threads, side) -> dict | None:
    """Run :func:`run_one` in a fresh interpreter and return its result (None on failure)."""
    command = [sys.executable, __file__, "--child", str(rows), str(batch_size), str(steps),
               str(threads), side]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        print(f"  {side} with {rows} rows failed:\n{completed.stderr.strip()}")
        return None
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        rows, batch_size, steps, threads = (int(value) for value in sys.argv[2:6])
        _setup.set_threads(threads)
        print(json.dumps(run_one(rows, batch_size, steps, threads, sys.argv[6])))
        return 0

    parser = _setup.make_parser(__doc__.splitlines()[0], data=False)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=None,
                        help="timed steps after the first (default 50, or 10 with --quick)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="minirec runs per size, round robin over the sizes; the fastest "
                             "is kept (default 3, or 1 with --quick)")
    args = parser.parse_args()
    settings = _setup.set_threads(args.threads)
    torch = _setup.import_torch(args.threads)
    _setup.print_machine(torch)
    _setup.print_settings(settings, torch)
    if torch is None:
        _setup.no_torch_message("the PyTorch column")
    sizes = QUICK_SIZES if args.quick else SIZES
    steps = args.steps or (10 if args.quick else 50)
    # --quick leaves PyTorch out: importing it in every subprocess takes longer than the steps.
    sides = ["minirec"] + (["torch"] if torch is not None and not args.quick else [])

    rounds = args.rounds or (1 if args.quick else 3)

    # Other processes on a shared machine slow some runs. minirec runs `rounds` times per
    # size, the sizes taking turns, and the fastest run of each size is kept.
    results = {side: {} for side in sides}
    for round_index in range(rounds):
        for rows in sizes:
            for side in sides:
                if side == "torch" and round_index > 0:
                    continue        # one run: its growth with the table size is not subtle
                result = measure(rows, args.batch_size, steps, args.threads, side)
                kept = results[side].get(rows)
                if result is not None and (kept is None or result["median"] < kept["median"]):
                    results[side][rows] = result

    print(f"DeepFM, {NUM_FIELDS} sparse fields, K=8, float32, batch {args.batch_size}, "
          f"median of {steps} steps after the first; minirec: fastest of {rounds} runs")
    header = f"{'table rows':>11s} {'params MB':>10s}"
    for side in sides:
        header += f" {side + ' first ms':>17s} {side + ' step ms':>16s}"
    header += f" {'minirec cpu ms':>15s} {'rows per step':>14s} {'us per row':>11s}"
    print(header)
    print("-" * len(header))
    for rows in sizes:
        line = f"{rows:11,d}"
        minirec = results["minirec"].get(rows)
        line += f" {minirec['parameter_bytes'] / 2**20:10.1f}" if minirec else f" {'':>10s}"
        for side in sides:
            result = results[side].get(rows)
            if result is None:
                line += f" {'failed':>17s} {'':>16s}"
            else:
                line += f" {1e3 * result['first']:17.2f} {1e3 * result['median']:16.3f}"
        if minirec:
            per_row = 1e6 * minirec["median"] / minirec["distinct_rows"]
            line += (f" {1e3 * minirec['cpu_median']:15.3f} {minirec['distinct_rows']:14,.0f}"
                     f" {per_row:11.3f}")
        print(line)

    smallest, largest = sizes[0], sizes[-1]
    for side in sides:
        if smallest in results[side] and largest in results[side]:
            ratio = results[side][largest]["median"] / results[side][smallest]["median"]
            verdict = ""
            if side == "minirec":
                cpu_ratio = (results[side][largest]["cpu_median"]
                             / results[side][smallest]["cpu_median"])
                verdict = f" (CPU time: {cpu_ratio:.2f})"
                if largest == 10**7:
                    verdict += f", target <= {TARGET}: {'met' if ratio <= TARGET else 'MISSED'}"
            print(f"{side}: step at {largest:,} rows / step at {smallest:,} rows = "
                  f"{ratio:.2f}{verdict}")

    # A small table gets repeated ids in a batch, so its step updates fewer distinct rows.
    # These lines separate that from the table size.
    fastest = results["minirec"]
    if smallest in fastest and largest in fastest:
        small, large = fastest[smallest], fastest[largest]
        per_row = ((large["median"] / large["distinct_rows"])
                   / (small["median"] / small["distinct_rows"]))
        print(f"minirec: {small['distinct_rows']:,.0f} distinct rows per step at {smallest:,} "
              f"rows, {large['distinct_rows']:,.0f} at {largest:,}; time per distinct row at "
              f"{largest:,} / at {smallest:,} = {per_row:.2f}")
        middle = sorted(fastest)[len(fastest) // 2] if len(fastest) > 2 else None
        if middle not in (None, smallest, largest):
            print(f"minirec: step at {largest:,} rows / step at {middle:,} rows = "
                  f"{large['median'] / fastest[middle]['median']:.2f} (both tables larger than "
                  f"the rows a batch reads)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
