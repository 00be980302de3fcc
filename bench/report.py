#!/usr/bin/python3
# report.py — the table bench/run prints
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Reads the results bench/run collected (one line per contender run:
# SCENARIO <TAB> CONTENDER <TAB> RUN <TAB> JSON) and prints, per scenario
# and contender, the median and the range of each metric, its ratio to
# ours in the same scenario, then the targets of the issue.
#
#   /usr/bin/python3 bench/report.py RESULTS.tsv [--runs N] [--title TEXT]

import argparse
import json
import statistics
import sys
from collections import OrderedDict

READ_BUFFER = 256 * 1024  # DISPATCH_READ_BUFFER_SIZE

# mode -> [(label, function of the JSON line, unit, ratio to ours?)]
METRICS = {
    "small": [
        ("req/s", lambda r: r["rps"], "", True),
        ("CPU per 1000 req", lambda r: r["cpu_ms_per_1000"], "ms", True),
    ],
    "stream": [
        ("throughput", lambda r: r["mb_per_s"], "MB/s", True),
        ("peak RSS", lambda r: r["peak_rss_kib"] / 1024, "MiB", True),
        ("CPU", lambda r: r["cpu_s"], "s", True),
    ],
    "pause": [
        ("held in user space", lambda r: r["held_end"], "B", False),
        ("RSS growth in pause", lambda r: r["rss_growth_kib"], "KiB", False),
        ("delivered in pause", lambda r: r["delivered_during_pause"], "B", False),
        ("server sent in pause", lambda r: r["server_sent_during_pause"], "B", False),
        ("in kernel buffers", lambda r: r["kernel_buffered_end"], "B", False),
    ],
    "resume-latency": [
        ("resume→data p50", lambda r: r["p50_us"], "µs", True),
        ("resume→data p99", lambda r: r["p99_us"], "µs", True),
    ],
    "abort-latency": [
        ("abort→error p50", lambda r: r["p50_us"], "µs", True),
        ("abort→error max", lambda r: r["max_us"], "µs", True),
        ("sockets closed", lambda r: 100.0 * r["closed"] / max(1, r["samples"]), "%", False),
    ],
    "many-paused": [
        ("memory per request", lambda r: r["bytes_per_request"] / 1024, "KiB", True),
        ("held per request", lambda r: r["held_per_request"], "B", False),
    ],
}


def fmt(v):
    if v is None:
        return "—"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}".replace(",", " ")
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def load(path):
    scenarios = OrderedDict()
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            scenario, contender, run, payload = line.split("\t", 3)
            try:
                result = json.loads(payload)
            except json.JSONDecodeError:
                result = {"error": f"unreadable result: {payload[:100]}"}
            scenarios.setdefault(scenario, OrderedDict()).setdefault(contender, []).append(result)
    return scenarios


def summarize(results, fn):
    values = []
    for r in results:
        if "error" in r:
            continue
        try:
            values.append(float(fn(r)))
        except (KeyError, TypeError, ValueError):
            pass
    if not values:
        return None
    return statistics.median(values), min(values), max(values), len(values)


def scenario_mode(contenders):
    for results in contenders.values():
        for r in results:
            if "mode" in r:
                return r["mode"]
    return None


def print_table(scenarios, title):
    rows = [("scenario", "contender", "metric", "median", "min–max", "× ours", "runs")]
    notes = []
    medians = {}  # (scenario, contender, label) -> median

    for scenario, contenders in scenarios.items():
        mode = scenario_mode(contenders)
        metrics = METRICS.get(mode, [])
        first_row_of_scenario = True
        for contender, results in contenders.items():
            if contender == "-":
                notes.append(f"{scenario}: {results[0].get('error')}")
                continue
            errors = [r["error"] for r in results if "error" in r]
            if errors:
                notes.append(f"{scenario} / {contender}: {len(errors)} of {len(results)} "
                             f"run(s) failed: {errors[0]}")
            first_row_of_contender = True
            for label, fn, unit, with_ratio in metrics:
                s = summarize(results, fn)
                if s is None:
                    continue
                median, lo, hi, n = s
                medians[(scenario, contender, label)] = median
                ours = medians.get((scenario, "ours", label))
                ratio = ""
                if not with_ratio:
                    pass
                elif contender != "ours" and ours not in (None, 0):
                    ratio = f"{median / ours:.2f}"
                elif contender == "ours":
                    ratio = "1.00" if median else ""
                rows.append((
                    scenario if first_row_of_scenario else "",
                    contender if first_row_of_contender else "",
                    f"{label} ({unit})" if unit else label,
                    fmt(median),
                    f"{fmt(lo)}–{fmt(hi)}" if n > 1 else "",
                    ratio,
                    str(n),
                ))
                first_row_of_scenario = False
                first_row_of_contender = False
            # a small-request run also says how many requests failed
            failed = [r.get("errors", 0) for r in results if "error" not in r]
            if any(failed):
                notes.append(f"{scenario} / {contender}: {sum(failed)} request(s) failed "
                             f"({next((r.get('first_error') for r in results if r.get('first_error')), '')})")
        rows.append(None)

    widths = [max(len(r[i]) for r in rows if r) for i in range(len(rows[0]))]
    right = {3, 4, 5, 6}

    def line(r):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(r, widths))).rstrip()

    print(title)
    print()
    print(line(rows[0]))
    print("  ".join("-" * w for w in widths))
    for r in rows[1:]:
        print(line(r) if r else "")
    if notes:
        print("Notes:")
        for n in notes:
            print(f"  - {n}")
        print()
    return medians


def check_targets(scenarios, medians):
    checks = []

    def m(scenario, contender, label):
        return medians.get((scenario, contender, label))

    def add(name, value, limit, ok, detail):
        if value is None or limit is None:
            checks.append((name, "n/a", detail))
        else:
            checks.append((name, "PASS" if ok else "FAIL", detail))

    for scenario in scenarios:
        if not (scenario.startswith("a ") or scenario.startswith("b ")):
            continue
        ours_rps, soup_rps = m(scenario, "ours", "req/s"), m(scenario, "libsoup", "req/s")
        ours_cpu = m(scenario, "ours", "CPU per 1000 req")
        soup_cpu = m(scenario, "libsoup", "CPU per 1000 req")
        if ours_rps and soup_rps:
            r = ours_rps / soup_rps
            add(f"{scenario}: req/s ≥ 0.95× raw libsoup", r, 0.95, r >= 0.95, f"{r:.2f}×")
        if ours_cpu and soup_cpu:
            r = ours_cpu / soup_cpu
            add(f"{scenario}: CPU/request ≤ 1.1× raw libsoup", r, 1.1, r <= 1.1, f"{r:.2f}×")
        # The reference line: raw libsoup paying what the contract costs in
        # GLib and libsoup (bench-soup.c, --contract-costs), none of our code.
        ref_rps = m(scenario, "libsoup-contract", "req/s")
        ref_cpu = m(scenario, "libsoup-contract", "CPU per 1000 req")
        if ref_rps and ref_cpu and soup_rps and soup_cpu:
            detail = (f"req/s {ref_rps / soup_rps:.2f}×, "
                      f"CPU {ref_cpu / soup_cpu:.2f}× raw libsoup")
            if ours_rps and ours_cpu:
                detail += f"; ours {ours_rps / ref_rps:.2f}× / {ours_cpu / ref_cpu:.2f}× of it"
            checks.append((f"{scenario}: libsoup paying the contract's costs", "info", detail))

    for scenario in scenarios:
        if scenario.startswith("c "):
            ours = m(scenario, "ours", "throughput")
            best = max([v for v in (m(scenario, "curl", "throughput"),
                                    m(scenario, "libsoup", "throughput")) if v] or [0]) or None
            undici = m(scenario, "undici", "throughput")
            if ours and best:
                add(f"{scenario}: ≥ 0.9× best of curl, raw libsoup", ours, best,
                    ours >= 0.9 * best, f"{ours / best:.2f}×")
            if ours and undici:
                add(f"{scenario}: ≥ 2× undici", ours, undici, ours >= 2 * undici,
                    f"{ours / undici:.2f}×")
        elif scenario.startswith("d "):
            held = m(scenario, "ours", "held in user space")
            growth = m(scenario, "ours", "RSS growth in pause")
            add(f"{scenario}: held ≤ one read buffer (256 KiB)", held, READ_BUFFER,
                held is not None and held <= READ_BUFFER, f"{fmt(held)} B")
            add(f"{scenario}: RSS growth ≤ 8 MiB", growth, 8192,
                growth is not None and growth <= 8192, f"{fmt(growth)} KiB")
        elif scenario.startswith("e "):
            p50 = m(scenario, "ours", "resume→data p50")
            add(f"{scenario}: p50 ≤ 75 µs", p50, 75, p50 is not None and p50 <= 75,
                f"{fmt(p50)} µs")
        elif scenario.startswith("g "):
            per = m(scenario, "ours", "memory per request")
            add(f"{scenario}: ≤ 32 KiB per paused request", per, 32,
                per is not None and per <= 32, f"{fmt(per)} KiB")

    if checks:
        print("Targets (issue “Benchmarks against the field”), on medians of this run:")
        w = max(len(c[0]) for c in checks)
        for name, verdict, detail in checks:
            print(f"  {name.ljust(w)}  {verdict:4}  {detail}")
    return checks


def main():
    p = argparse.ArgumentParser()
    p.add_argument("results")
    p.add_argument("--runs", type=int, default=0)
    p.add_argument("--title", default="libdispatch-gobject vs the field")
    args = p.parse_args()

    scenarios = load(args.results)
    if not scenarios:
        print("no results", file=sys.stderr)
        return 1
    medians = print_table(scenarios, args.title)
    check_targets(scenarios, medians)
    if args.runs == 1:
        print()
        print("One run each (--quick): a smoke test, not a measurement.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
