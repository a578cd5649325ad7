#!/usr/bin/env bash
# ratios.sh: gencoro / baseline ratios from the criterion benches.
#
# Every bench group holds gencoro and its baselines (tokio, raw corosensei),
# measured in the same run, so the meaningful figure is the ratio
# gencoro time / baseline time (above 1: gencoro is slower); in the explore
# bench the baseline is shuttle. This script runs each bench target
# (`cargo bench --bench runtime`, `--bench generator`, ...) N times,
# reads criterion's estimate of each benchmark after each run
# (<target>/criterion/<group>/<id>/new/estimates.json, median point estimate
# by default), and prints one row per (group, gencoro member, baseline):
#
#   gencoro / baseline time ratios (median point estimates, 3 run(s); criterion args: ...)
#   raw corosensei round trip (resume_roundtrip/corosensei): 4.01 ns; runs: 4.32 3.69 4.01
#
#   group               gencoro  baseline          ratio  runs            gencoro       rt
#   yield               gencoro  tokio              0.88  0.78 0.97 0.88  39.2 us  4.01 ns
#   yield               gencoro  raw_floor          2.44  2.08 2.81 2.44  39.2 us  4.01 ns
#   yield_from_depth/1  gencoro  corosensei_chain   2.21  2.21 2.25 2.19  12.3 ns  4.01 ns
#
# (figures for illustration only). The columns:
#
#   ratio    median over the N runs of (gencoro / baseline) within each run
#   runs     the ratio of each run, in run order (their spread shows the noise)
#   gencoro  the gencoro member's time, median over the runs
#   rt       the machine's raw corosensei round trip (resume_roundtrip/
#            corosensei: one resume plus one suspend), median over the runs,
#            as the unit of stackful context-switch cost on this machine
#
# Parameterised groups (yield_from_depth/<depth>) pair members with the same
# parameter. The round trip of each run is also printed above the table.
#
# Benchmarks that declare a criterion throughput (explore: 1,000 schedules
# per iteration) also get a line below the table with their rate, elements
# per second from the median time over the runs, and each run's rate:
#
#   throughput (elements/s; explore: schedules/s):
#     explore/gencoro  68.8k/s  runs: 68.8k 66.1k 70.2k
#     explore/shuttle  25.4k/s  runs: 25.4k 25.0k 25.9k
#
# Usage:
#   bash benches/ratios.sh [-n N] [-s median|mean] [-a "CRITERION ARGS"]
#                          [-b "BENCHES"] [-p] [-v] [-- EXTRA CRITERION ARGS]
#
#   -n N      number of runs (default 3)
#   -s STAT   point estimate to read: median (default) or mean
#   -a ARGS   criterion arguments for every run (default
#             "--warm-up-time 1 --measurement-time 3"; BENCH_ARGS in the
#             environment does the same)
#   -b LIST   bench targets to run (default "runtime generator sync sync_locks
#             blocking explore net"; the round trip comes from generator)
#   -p        parse only: print the table from the runs saved last time,
#             without running anything
#   -v        show cargo's and criterion's output instead of logging it
#   -- ...    appended to the criterion arguments, e.g. a filter:
#             bash benches/ratios.sh -n 1 -- spawn_join
#
# Each run's estimates are copied to <target>/ratios/run-<k>/ (with the
# bench logs), since criterion overwrites new/ on every run; only estimates
# written during that run are copied. <target> is $CARGO_TARGET_DIR or
# target/. Needs cargo and python3.
#
# Each benchmark takes about 4 s plus criterion's analysis (explore's two
# about 10 s in all), so a full default run of every target three times
# takes several minutes.

set -euo pipefail

runs=3
stat=median
bench_args=${BENCH_ARGS:---warm-up-time 1 --measurement-time 3}
benches="runtime generator sync sync_locks blocking explore net"
parse_only=0
verbose=0

usage() {
    if [[ ${1:-0} == 0 ]]; then
        sed -n '/^# Usage:/,/^# Each run/p' "$0" | sed '$d; s/^# \{0,1\}//'
    else
        sed -n '/^# Usage:/,/^# Each run/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    fi
    exit "${1:-0}"
}

while getopts ":n:s:a:b:pvh" opt; do
    case $opt in
        n) runs=$OPTARG ;;
        s) stat=$OPTARG ;;
        a) bench_args=$OPTARG ;;
        b) benches=$OPTARG ;;
        p) parse_only=1 ;;
        v) verbose=1 ;;
        h) usage 0 ;;
        :) echo "ratios.sh: -$OPTARG needs a value" >&2; usage 2 ;;
        *) echo "ratios.sh: unknown option -$OPTARG" >&2; usage 2 ;;
    esac
done
shift $((OPTIND - 1))
extra_args=("$@")

case $runs in
    '' | *[!0-9]* | 0) echo "ratios.sh: -n needs a positive integer, got '$runs'" >&2; exit 2 ;;
esac
case $stat in
    median | mean) ;;
    *) echo "ratios.sh: -s is median or mean, got '$stat'" >&2; exit 2 ;;
esac
command -v python3 >/dev/null || { echo "ratios.sh: needs python3" >&2; exit 2; }

cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
criterion_dir=$target/criterion
out=$target/ratios

if [[ $parse_only == 0 ]]; then
    rm -rf "$out"
    mkdir -p "$out"
    read -ra args <<<"$bench_args"
    args+=(${extra_args[@]+"${extra_args[@]}"})
    printf '%s\n' "${args[*]}" >"$out/args"
    echo "ratios.sh: $runs run(s) of: $benches; criterion args: ${args[*]}" >&2
    for ((k = 1; k <= runs; k++)); do
        run_dir=$out/run-$k
        mkdir -p "$run_dir"
        marker=$run_dir/.started
        touch "$marker"
        # Estimates written within the same second as the marker must count.
        sleep 1
        for b in $benches; do
            echo "ratios.sh: run $k/$runs: cargo bench --bench $b" >&2
            if [[ $verbose == 1 ]]; then
                cargo bench --bench "$b" -- "${args[@]}"
            elif ! cargo bench --bench "$b" -- "${args[@]}" >"$run_dir/$b.log" 2>&1; then
                echo "ratios.sh: cargo bench --bench $b failed; its output:" >&2
                tail -n 40 "$run_dir/$b.log" >&2
                exit 1
            fi
        done
        if [[ -d $criterion_dir ]]; then
            # Copy new/{estimates,benchmark}.json of every benchmark this run wrote.
            while IFS= read -r -d '' est; do
                rel=${est#"$criterion_dir"/}
                dest=$run_dir/criterion/$(dirname "$rel")
                mkdir -p "$dest"
                # -p keeps the times: the table follows the order of writing.
                cp -p "$est" "$dest/"
                bj=$(dirname "$est")/benchmark.json
                if [[ -f $bj ]]; then cp -p "$bj" "$dest/"; fi
            done < <(find "$criterion_dir" -path '*/new/estimates.json' -newer "$marker" -print0)
        fi
    done
elif [[ ! -d $out ]]; then
    echo "ratios.sh: -p: no saved runs in $out" >&2
    exit 2
fi

python3 - "$out" "$stat" <<'PY'
import json
import os
import signal
import statistics
import sys

signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet under `| head`

out, stat = sys.argv[1], sys.argv[2]
GENCORO = "gencoro"
RT = ("resume_roundtrip", "corosensei", None)

run_dirs = sorted(
    (d for d in os.listdir(out) if d.startswith("run-")), key=lambda d: int(d[4:])
)


def load(run_dir):
    """{(group, function, parameter or None): nanoseconds} for one run, and
    {key: time its estimate was written}; criterion throughputs (elements
    per iteration) go to `elements`."""
    root = os.path.join(out, run_dir, "criterion")
    found, written = {}, {}
    for dirpath, _, files in os.walk(root):
        if "estimates.json" not in files:
            continue
        with open(os.path.join(dirpath, "estimates.json")) as f:
            ns = json.load(f)[stat]["point_estimate"]
        meta = os.path.join(dirpath, "benchmark.json")
        if os.path.exists(meta):
            with open(meta) as f:
                m = json.load(f)
            key = (m["group_id"], m.get("function_id"), m.get("value_str"))
            throughput = m.get("throughput") or {}
            if "Elements" in throughput:
                elements[key] = throughput["Elements"]
        else:  # <group>/<function>[/<parameter>]/new
            parts = os.path.relpath(dirpath, root).split(os.sep)[:-1]
            key = (parts[0], parts[1] if len(parts) > 1 else None,
                   parts[2] if len(parts) > 2 else None)
        found[key] = ns
        written[key] = os.path.getmtime(os.path.join(dirpath, "estimates.json"))
    return found, written


elements = {}
loaded = [load(d) for d in run_dirs]
runs = [found for found, _ in loaded]
first_written = {}
for _, written in loaded:
    for k, t in written.items():
        first_written[k] = min(t, first_written.get(k, t))
if not any(runs):
    sys.exit(f"ratios.sh: no criterion estimates under {out}/run-*/")


def fmt_time(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


rts = [r[RT] for r in runs if RT in r]
rt = f"{statistics.median(rts):.3g} ns" if rts else "n/a"
args_file = os.path.join(out, "args")
args = open(args_file).read().strip() if os.path.exists(args_file) else "?"
print(f"gencoro / baseline time ratios ({stat} point estimates, {len(runs)} run(s); "
      f"criterion args: {args})")
print("raw corosensei round trip (resume_roundtrip/corosensei): "
      + (f"{rt}; runs: " + " ".join(f"{x:.3g}" for x in rts) if rts else "n/a (generator bench not run)"))
print()

# Rows in the order criterion ran the benchmarks: a group (or a parameter
# of one) comes where its gencoro member was first written.
keys = sorted({k for r in runs for k in r}, key=lambda k: first_written[k])
order = {}
for g, f, p in keys:
    order.setdefault((g, p), len(order))
keys.sort(key=lambda k: order[(k[0], k[2])])
rows = []
for g, f, p in keys:
    if f != GENCORO:
        continue
    for bg, bf, bp in keys:
        if bg != g or bp != p or bf == GENCORO:
            continue
        ratios = [r[(g, f, p)] / r[(bg, bf, bp)] for r in runs
                  if (g, f, p) in r and (bg, bf, bp) in r]
        if not ratios:
            continue
        times = [r[(g, f, p)] for r in runs if (g, f, p) in r]
        name = g if p is None else f"{g}/{p}"
        rows.append((name, f, bf, f"{statistics.median(ratios):.2f}",
                     " ".join(f"{x:.2f}" for x in ratios),
                     fmt_time(statistics.median(times)), rt))

header = ("group", "gencoro", "baseline", "ratio", "runs", "gencoro", "rt")
widths = [max(len(str(row[i])) for row in rows + [header]) for i in range(len(header))]
right = {3, 5, 6}
for row in [header] + rows:
    print("  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                    for i, (c, w) in enumerate(zip(row, widths))).rstrip())

def fmt_rate(per_s):
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if per_s >= scale:
            return f"{per_s / scale:.3g}{unit}"
    return f"{per_s:.3g}"


rated = [k for k in keys if k in elements]
if rated:
    print()
    print("throughput (elements/s; explore: schedules/s):")
    names = {k: "/".join(x for x in k if x is not None) for k in rated}
    width = max(len(n) for n in names.values())
    for k in rated:
        times = [r[k] for r in runs if k in r]
        rates = [elements[k] * 1e9 / ns for ns in times]
        print(f"  {names[k].ljust(width)}  {fmt_rate(elements[k] * 1e9 / statistics.median(times))}/s"
              "  runs: " + " ".join(fmt_rate(x) for x in rates))

missing = sorted({(k[0], k[2]) for k in keys if k[1] == GENCORO}
                 - {(k[0], k[2]) for k in keys if k[1] != GENCORO})
for g, p in missing:
    print(f"note: {g}{'' if p is None else '/' + p} has no baseline in these runs")
PY
