#!/usr/bin/env python3
"""CPython's contextvars vs baton, one table.

Usage (from the workspace root; run both on the same machine, one after the
other, with nothing else busy):

    cargo bench -p baton-benches --bench context_ops && python3 benches/python/context_ops.py

The script times the same operations as `benches/benches/context_ops.rs` on
CPython's `contextvars` with `timeit`, reads baton's medians from criterion's
output (`<target-dir>/criterion/<group>/<bench>/new/estimates.json`, the
median's point estimate) and prints one table: CPython ns/op, baton ns/op,
and CPython / baton (> 1 means baton is faster).

The target dir is `--target-dir DIR`, else `$CARGO_TARGET_DIR`, else
`target` (relative to the workspace root). `--python-only` skips baton.

How CPython is timed: each statement runs in a fresh `contextvars.Context`
holding N bound variables (like the Rust fixtures); `timeit` picks a loop
count with `autorange` and divides it by 10 (about 20 ms per repeat), then
takes the best of 25 repeats (short repeats resist noise from other
processes); the cost of
timeit's empty loop (`pass`) is subtracted, which favours CPython. For
`ctx.run(noop)` the cost of calling `noop()` itself is subtracted too, so
both columns are the overhead of `run` alone. Rust's criterion reports the
median; CPython's figure is the minimum — again in CPython's favour.
"""

import argparse
import contextvars
import json
import os
import platform
import sys
import timeit

REPEAT = 25
NUMBER = 0  # loops per repeat; 0 = autorange / 10
BOUND_COUNTS = (1, 8, 64)


def best_ns(stmt, env):
    """Best per-loop time of `stmt` in ns (timeit, autorange, best of REPEAT)."""
    timer = timeit.Timer(stmt, globals=env)
    if NUMBER:
        number = NUMBER
    else:
        number, _ = timer.autorange()  # >= 0.2 s per repeat
        # Many short repeats (~20 ms each): the best of them is the one least
        # disturbed by other processes on a busy machine.
        number = max(number // 10, 10)
    times = [t / number * 1e9 for t in timer.repeat(repeat=REPEAT, number=number)]
    SAMPLES[stmt] = times
    return min(times)


# stmt -> per-loop ns of every repeat of its latest timing (for --json)
SAMPLES = {}


def bound_context(n, value_of=lambda i: i):
    """A fresh context with n distinct vars bound; returns (ctx, vars)."""
    vars_ = [contextvars.ContextVar(f"v{i}") for i in range(n)]
    ctx = contextvars.Context()

    def bind():
        for i, var in enumerate(vars_):
            var.set(value_of(i))

    ctx.run(bind)
    assert len(ctx) == n
    return ctx, vars_


def measure_cpython():
    """{row name: ns/op} for every operation, timed inside its own context."""
    results = {}
    loop = best_ns("pass", {})
    results["_loop_overhead"] = loop

    def timed_in(ctx, stmt, env):
        return ctx.run(best_ns, stmt, env) - loop

    for n in BOUND_COUNTS:
        ctx, vars_ = bound_context(n)
        results[f"get u64 ({n} bound)"] = timed_in(ctx, "v.get()", {"v": vars_[0]})
        sctx, svars = bound_context(n, lambda i: f"value-{i}")
        results[f"get str ({n} bound)"] = timed_in(sctx, "v.get()", {"v": svars[0]})
        results[f"set+reset ({n} bound)"] = timed_in(ctx, "v.reset(v.set(42))", {"v": vars_[0]})
        results[f"copy_context ({n} bound)"] = timed_in(
            ctx, "copy_context()", {"copy_context": contextvars.copy_context}
        )

    ctx, _ = bound_context(8)
    unbound = contextvars.ContextVar("unbound", default=None)
    results["get unbound (8 bound)"] = timed_in(ctx, "v.get()", {"v": unbound})

    def noop():
        pass

    call = best_ns("noop()", {"noop": noop}) - loop
    run = best_ns("ctx.run(noop)", {"ctx": ctx, "noop": noop}) - loop
    results["ctx.run(noop) overhead (8 bound)"] = run - call
    return results


def measure_sweep(counts):
    """{"get"|"set+reset": {n: ns/op}}: the cost as the number of bound vars grows."""
    loop = best_ns("pass", {})
    out = {"get": {}, "set+reset": {}}
    for n in counts:
        ctx, vars_ = bound_context(n)
        out["get"][n] = ctx.run(best_ns, "v.get()", {"v": vars_[0]}) - loop
        out["set+reset"][n] = ctx.run(best_ns, "v.reset(v.set(42))", {"v": vars_[0]}) - loop
        assert ctx[vars_[0]] == 0
    return out


# row name -> criterion "<group>/<bench>" of the matching baton benchmark
ROWS = {}
for _n in BOUND_COUNTS:
    ROWS[f"get u64 ({_n} bound)"] = f"get_u64/baton/{_n}"
    ROWS[f"get str ({_n} bound)"] = f"get_arc_str/baton/{_n}"
ROWS["get unbound (8 bound)"] = "get_unbound/baton/8"
for _n in BOUND_COUNTS:
    ROWS[f"set+reset ({_n} bound)"] = f"set_reset/baton/{_n}"
for _n in BOUND_COUNTS:
    ROWS[f"copy_context ({_n} bound)"] = f"copy_context/baton/{_n}"
ROWS["ctx.run(noop) overhead (8 bound)"] = "run_noop/baton/8"


def baton_median(criterion_dir, bench):
    path = os.path.join(criterion_dir, *bench.split("/"), "new", "estimates.json")
    try:
        with open(path) as f:
            return json.load(f)["median"]["point_estimate"], path
    except FileNotFoundError:
        return None, path


def main():
    global REPEAT, NUMBER
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--target-dir", default=os.environ.get("CARGO_TARGET_DIR", "target"))
    ap.add_argument("--python-only", action="store_true")
    ap.add_argument("--json", action="store_true",
                    help="print CPython's figures only, as JSON (for the report binary)")
    ap.add_argument("--repeat", type=int, default=25, help="timeit repeats (best of)")
    ap.add_argument("--number", type=int, default=0,
                    help="loops per repeat (default: timeit's autorange / 10)")
    ap.add_argument("--sweep", default="",
                    help="with --json: comma-separated bound-var counts for the get/set sweep")
    args = ap.parse_args()
    REPEAT = max(args.repeat, 1)
    NUMBER = max(args.number, 0)
    if args.json:
        counts = [int(x) for x in args.sweep.split(",") if x]
        doc = {
            "implementation": f"{platform.python_implementation()} {platform.python_version()}",
            "repeat": REPEAT,
            "ops": measure_cpython(),
            "sweep": {op: {str(n): v for n, v in d.items()} for op, d in measure_sweep(counts).items()},
        }
        json.dump(doc, sys.stdout)
        print()
        return
    target = args.target_dir if os.path.isabs(args.target_dir) else os.path.join(root, args.target_dir)
    criterion_dir = os.path.join(target, "criterion")

    py = measure_cpython()
    impl = f"{platform.python_implementation()} {platform.python_version()}"
    print(f"# contextvars: {impl} vs baton ({platform.machine()}, {os.cpu_count()} CPUs)")
    print(f"# CPython: timeit best of {REPEAT}, minus the empty loop ({py['_loop_overhead']:.1f} ns)")
    print(f"# baton: criterion median from {criterion_dir}")
    print()
    print(f"| {'operation':34} | {'CPython ns':>10} | {'baton ns':>9} | {'CPython/baton':>13} |")
    print(f"|{'-' * 36}|{'-' * 11}:|{'-' * 10}:|{'-' * 14}:|")
    missing = []
    for row, bench in ROWS.items():
        cp = py[row]
        if args.python_only:
            bt = None
        else:
            bt, path = baton_median(criterion_dir, bench)
            if bt is None:
                missing.append(path)
        bt_s = f"{bt:9.2f}" if bt is not None else f"{'—':>9}"
        ratio = f"{cp / bt:12.2f}×" if bt else f"{'—':>13}"
        print(f"| {row:34} | {cp:10.2f} | {bt_s} | {ratio} |")
    if missing:
        print()
        print("missing criterion results (run `cargo bench -p baton-benches --bench context_ops` first):", file=sys.stderr)
        for path in missing:
            print(f"  {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
