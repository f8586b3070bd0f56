#!/usr/bin/env python3
"""Tables and charts from a bench/run results directory (standard library only).

    python3 bench/report.py DIR

Reads DIR/meta.tsv, DIR/rounds.tsv, DIR/eo.tsv and DIR/latency.tsv (whichever exist) and writes
DIR/report.md and DIR/*.svg. Every figure is the median over the rounds that succeeded, shown
with their min and max; a client whose rounds all failed gets a row saying why.
"""

import csv
import html
import math
import os
import statistics
import sys

CLIENT_NAMES = {
    "ours": "kafka-once",
    "rdkafka-base": "rdkafka BaseConsumer",
    "rdkafka-stream": "rdkafka StreamConsumer",
    "rdkafka": "rdkafka",
    "kcat": "kcat",
    "franz-go": "franz-go",
    "java": "Java kafka-clients",
    "dbos": "DBOS",
}
RDKAFKA = {"consume": ["rdkafka-base", "rdkafka-stream"], "produce": ["rdkafka"], "partitions": ["rdkafka-base", "rdkafka-stream"]}
COLORS = {
    "ours": "#d9480f",
    "rdkafka-base": "#1c7ed6",
    "rdkafka-stream": "#4dabf7",
    "rdkafka": "#1c7ed6",
    "kcat": "#74c0fc",
    "franz-go": "#2b8a3e",
    "java": "#7950f2",
    "dbos": "#868e96",
}


def read_tsv(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def med(xs):
    return statistics.median(xs) if xs else None


class Figures:
    """The successful rounds of one client on one dataset, and the failures' reasons."""

    def __init__(self, rows):
        self.rows = rows
        self.ok = [r for r in rows if r["status"] == "ok"]
        self.failures = sorted({r["status"][len("FAIL: "):] for r in rows if r["status"] != "ok"})
        self.rates = [int(r["records"]) / float(r["wall_s"]) for r in self.ok]
        self.cpu_per_m = [
            (float(r["user_s"]) + float(r["sys_s"])) * 1e6 / int(r["records"]) for r in self.ok
        ]
        self.rss_mib = [int(r["maxrss_kb"]) / 1024 for r in self.ok]
        self.size = int(rows[0]["size"]) if rows else 0

    @property
    def rate(self):
        return med(self.rates)

    @property
    def cpu(self):
        return med(self.cpu_per_m)


def spread(xs, fmt):
    if not xs:
        return "–"
    m = med(xs)
    if len(xs) == 1:
        return fmt(m)
    return f"{fmt(m)} ({fmt(min(xs))}–{fmt(max(xs))})"


def n0(x):
    return f"{x:,.0f}"


def n2(x):
    return f"{x:.2f}"


def n1(x):
    return f"{x:.1f}"


def ratio(a, b):
    return f"{a / b:.2f}×" if a and b else "–"


def by_client(rows, section, dataset):
    out = {}
    for r in rows:
        if r["section"] == section and r["dataset"] == dataset:
            out.setdefault(r["client"], []).append(r)
    return {c: Figures(rs) for c, rs in out.items()}


def datasets(rows, section):
    seen = []
    for r in rows:
        if r["section"] == section and r["dataset"] not in seen:
            seen.append(r["dataset"])
    return seen


def size_label(dataset):
    return {"100": "100 B", "1000": "1 KB"}.get(dataset, dataset)


def throughput_table(md, figs, unit):
    ours = figs.get("ours")
    md.append(
        f"| client | records/s median (min–max) | MB/s | CPU s per M records | peak RSS MiB | ours ÷ client: {unit} | ours ÷ client: CPU per record | rounds ok |"
    )
    md.append("|---|---|---|---|---|---|---|---|")
    for c, f in figs.items():
        name = CLIENT_NAMES.get(c, c)
        if c == "ours":
            name = f"**{name}**"
        if not f.ok:
            md.append(f"| {name} | did not run: {'; '.join(f.failures)} | | | | | | 0/{len(f.rows)} |")
            continue
        mbs = f.rate * f.size / 1e6
        rr = "" if c == "ours" or not ours or not ours.ok else ratio(ours.rate, f.rate)
        cr = "" if c == "ours" or not ours or not ours.ok else ratio(ours.cpu, f.cpu)
        note = f" ({'; '.join(f.failures)})" if f.failures else ""
        md.append(
            f"| {name} | {spread(f.rates, n0)} | {n1(mbs)} | {spread(f.cpu_per_m, n2)} | {spread(f.rss_mib, n1)} | {rr} | {cr} | {len(f.ok)}/{len(f.rows)}{note} |"
        )


def best_peer(figs, exclude=("ours",)):
    peers = [(f.rate, c) for c, f in figs.items() if c not in exclude and f.ok]
    return max(peers)[1] if peers else None


def librdkafka(figs, section):
    cands = [(figs[c].rate, c) for c in RDKAFKA[section] if c in figs and figs[c].ok]
    return max(cands)[1] if cands else None


# --------------------------------------------------------------------------------------------
# SVG: horizontal bars, grouped by dataset, median with a min–max whisker and a value label.


def bar_chart(path, title, unit, groups, log=False, fmt=n0, note=""):
    """groups: [(group label, [(client key, label, median, min, max)])]; note: a line under the axis."""
    bar_h, gap, label_w, plot_w, right = 18, 6, 250, 430, 110
    rows = sum(len(g[1]) for g in groups)
    height = 50 + rows * (bar_h + gap) + len(groups) * 26 + 30 + (16 if note else 0)
    width = label_w + plot_w + right
    vals = [v for _, bars in groups for b in bars for v in b[2:] if v]
    if not vals:
        return False
    hi = max(vals)
    lo = min(vals)
    if log:
        lo_e = math.floor(math.log10(lo))
        hi_e = math.ceil(math.log10(hi))
        if hi_e == lo_e:
            hi_e += 1

        def x(v):
            return label_w + plot_w * (math.log10(max(v, 10**lo_e)) - lo_e) / (hi_e - lo_e)

        ticks = [10**e for e in range(lo_e, hi_e + 1)]
    else:
        step = 10 ** math.floor(math.log10(hi))
        for m in (1, 2, 5, 10):
            if hi / (step * m) <= 6:
                step *= m
                break
        top = math.ceil(hi / step) * step

        def x(v):
            return label_w + plot_w * v / top

        ticks = [i * step for i in range(int(top / step) + 1)]
    s = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">{html.escape(title)}</text>',
    ]
    y = 40
    axis_top = y
    for gl, bars in groups:
        s.append(f'<text x="8" y="{y + 14}" font-weight="bold">{html.escape(gl)}</text>')
        y += 22
        for key, label, m, mn, mx in bars:
            color = COLORS.get(key, "#495057")
            s.append(f'<text x="{label_w - 6}" y="{y + bar_h - 5}" text-anchor="end">{html.escape(label)}</text>')
            if m is None:
                s.append(f'<text x="{label_w + 4}" y="{y + bar_h - 5}" fill="#c92a2a">did not run</text>')
            else:
                x0 = x(10**lo_e) if log else label_w
                s.append(f'<rect x="{x0:.1f}" y="{y}" width="{max(x(m) - x0, 1):.1f}" height="{bar_h}" fill="{color}"/>')
                if mn is not None and mx is not None and mx > mn:
                    cy = y + bar_h / 2
                    s.append(f'<line x1="{x(mn):.1f}" y1="{cy}" x2="{x(mx):.1f}" y2="{cy}" stroke="black" stroke-width="1"/>')
                    for v in (mn, mx):
                        s.append(f'<line x1="{x(v):.1f}" y1="{cy - 4}" x2="{x(v):.1f}" y2="{cy + 4}" stroke="black"/>')
                end = max(x(m), x(mx) if mx else 0)
                s.append(f'<text x="{end + 4:.1f}" y="{y + bar_h - 5}">{html.escape(fmt(m))}</text>')
            y += bar_h + gap
        y += 4
    axis_bottom = y
    for t in ticks:
        tx = x(t)
        s.append(f'<line x1="{tx:.1f}" y1="{axis_top}" x2="{tx:.1f}" y2="{axis_bottom}" stroke="#dee2e6"/>')
        s.append(f'<text x="{tx:.1f}" y="{axis_bottom + 14}" text-anchor="middle" fill="#495057">{html.escape(short(t))}</text>')
    s.append(f'<text x="{label_w + plot_w / 2}" y="{axis_bottom + 28}" text-anchor="middle" fill="#495057">{html.escape(unit)}{" (log scale)" if log else ""}; bar = median, whisker = min–max</text>')
    if note:
        s.append(f'<text x="{width / 2}" y="{axis_bottom + 44}" text-anchor="middle" fill="#495057" font-size="11">{html.escape(note)}</text>')
    # Grid lines first, so the bars cover them.
    grid = [e for e in s if e.startswith("<line") and 'stroke="#dee2e6"' in e]
    rest = [e for e in s if e not in grid]
    s = rest[:3] + grid + rest[3:]
    s.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(s) + "\n")
    return True


def chart(path, title, unit, groups, **kw):
    return bar_chart(path, title, unit, groups, note=CHART_NOTE, **kw)


def short(v):
    for div, suf in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= div:
            q = v / div
            return f"{q:g}{suf}" if q == int(q) else f"{q:.1f}{suf}"
    return f"{v:g}"


def chart_groups(rows, section, metric):
    groups = []
    for d in datasets(rows, section):
        bars = []
        for c, f in by_client(rows, section, d).items():
            xs = {"rate": f.rates, "cpu": f.cpu_per_m, "rss": f.rss_mib}[metric]
            bars.append((c, CLIENT_NAMES.get(c, c), med(xs), min(xs) if xs else None, max(xs) if xs else None))
        groups.append((size_label(d) if section != "partitions" else "1,000 partitions, 100 B", bars))
    return groups


# --------------------------------------------------------------------------------------------


CHART_NOTE = ""


def main():
    global CHART_NOTE
    out = sys.argv[1]
    meta = {}
    for line in open(os.path.join(out, "meta.tsv")):
        k, _, v = line.rstrip("\n").partition("\t")
        meta[k] = v
    rows = read_tsv(os.path.join(out, "rounds.tsv"))
    eo = read_tsv(os.path.join(out, "eo.tsv"))
    lat = read_tsv(os.path.join(out, "latency.tsv"))
    quick = meta.get("mode", "").startswith("quick")
    CHART_NOTE = f"bench/run, {meta.get('date', '?')}, kafka-once {meta.get('kafka-once', '?')}, {meta.get('machine', '?').split(' (')[0]}"
    if quick:
        CHART_NOTE = "VALIDATION RUN (--quick), NOT FOR PUBLISHING: " + CHART_NOTE

    md = ["# Kafka clients side by side: `bench/run`", ""]
    if quick:
        md += [
            "> **Validation run (`--quick`): small datasets and one round, to check that every client runs.",
            "> These numbers are not for publishing.**",
            "",
        ]
    md += [
        f"- Date: {meta.get('date', '?')}; command: `{meta.get('command', 'bench/run')}`; took {meta.get('duration', '?')}.",
        f"- Machine: {meta.get('machine', '?')}; load average before {meta.get('load_before', '?')}, after {meta.get('load_after', '?')}.",
        f"- Broker: {meta.get('broker', '?')}.",
        f"- kafka-once {meta.get('kafka-once', '?')}.",
    ]
    for k in ("rdkafka", "kcat", "franz-go", "java", "dbos"):
        if k in meta:
            md.append(f"- {k}: {meta[k]}.")
    for k, v in meta.items():
        if k.startswith("broken:"):
            md.append(f"- **{k[7:]} could not run**: {v}.")
    try:
        cores = int(meta.get("machine", "0").split()[0])
        load = float(meta.get("load_before", "0").split()[0])
    except ValueError:
        cores, load = 0, 0.0
    if cores and load > cores / 2:
        md.append(
            f"- **The machine was busy**: load average {load} on {cores} cores when the run began; other work competed with the clients and the broker."
        )
    md += [
        f"- Sizes: {meta.get('counts', '?')}.",
        "",
        "Each figure is the median of the successful rounds, with min–max in brackets. Wall time is",
        "taken around each client process (start-up, connecting and metadata included, as a user sees",
        "it); CPU (user+sys) and peak RSS of the client process come from `/usr/bin/time -v`. The broker",
        "runs on the same cores. MB/s counts value bytes only.",
        "",
    ]

    head_end = len(md)
    targets = []
    charts = []

    # Consume.
    if datasets(rows, "consume"):
        md += [
            "## Consume",
            "",
            "Each client reads every partition of a 12-partition topic from the beginning (manual",
            "assignment, no group), writes each value and a newline to a pipe that counts the lines, and",
            "stops after exactly the dataset's count (`kafka-once consume --from-beginning -n N`,",
            "`kcat -C -o beginning -c N`; the peers in `bench/peers/` do the same). Client defaults for",
            "fetch sizes. The JVM's start-up is part of the Java client's wall time and CPU.",
            "",
        ]
        for d in datasets(rows, "consume"):
            figs = by_client(rows, "consume", d)
            md.append(f"### {int(figs[next(iter(figs))].rows[0]['records']):,} records of {size_label(d)}")
            md.append("")
            throughput_table(md, figs, "records/s")
            md.append("")
            ours = figs.get("ours")
            lib = librdkafka(figs, "consume")
            best = best_peer(figs)
            if ours and ours.ok and lib:
                rr, cr = ours.rate / figs[lib].rate, ours.cpu / figs[lib].cpu
                targets.append((f"consume {size_label(d)}: records/s ≥ 1.5× librdkafka ({CLIENT_NAMES[lib]})", f"{rr:.2f}×", rr >= 1.5))
                targets.append((f"consume {size_label(d)}: CPU per record ≤ 0.5× librdkafka ({CLIENT_NAMES[lib]})", f"{cr:.2f}×", cr <= 0.5))
            if ours and ours.ok and best:
                md.append(
                    f"Best peer: {CLIENT_NAMES[best]}; kafka-once reads {ours.rate / figs[best].rate:.2f}× its records/s at {ours.cpu / figs[best].cpu:.2f}× its CPU per record."
                )
                md.append("")
        for metric, fname, title, unit, fmt in (
            ("rate", "consume-records-per-s.svg", "Consume: records/s", "records/s", n0),
            ("cpu", "consume-cpu-per-M.svg", "Consume: client CPU s per million records", "CPU s per M records", n2),
        ):
            if chart(os.path.join(out, fname), title, unit, chart_groups(rows, "consume", metric), fmt=fmt):
                charts.append((title, fname))

    # 1,000 partitions.
    if datasets(rows, "partitions"):
        figs = by_client(rows, "partitions", "1000p")
        n = f'{int(figs[next(iter(figs))].rows[0]["records"]):,}'
        md += [
            "## Memory: 1,000 partitions",
            "",
            f"The same consumers read a 1,000-partition topic holding {n} records of 100 B (keyed, so every",
            "partition has some), from the beginning. Peak RSS of the client process:",
            "",
            "| client | peak RSS MiB median (min–max) | records/s | CPU s per M records | rounds ok |",
            "|---|---|---|---|---|",
        ]
        for c, f in figs.items():
            name = CLIENT_NAMES.get(c, c)
            if not f.ok:
                md.append(f"| {name} | did not run: {'; '.join(f.failures)} | | | 0/{len(f.rows)} |")
                continue
            md.append(f"| {name} | {spread(f.rss_mib, n1)} | {spread(f.rates, n0)} | {spread(f.cpu_per_m, n2)} | {len(f.ok)}/{len(f.rows)} |")
        md.append("")
        ours = figs.get("ours")
        if ours and ours.ok:
            targets.append(("memory: peak RSS < 64 MiB at 1,000 partitions", f"{max(ours.rss_mib):.1f} MiB (max)", max(ours.rss_mib) < 64))
        if chart(os.path.join(out, "partitions-rss.svg"), "Peak RSS consuming 1,000 partitions", "MiB", chart_groups(rows, "partitions", "rss"), fmt=n1):
            charts.append(("Peak RSS consuming 1,000 partitions", "partitions-rss.svg"))

    # Produce.
    if datasets(rows, "produce"):
        md += [
            "## Produce",
            "",
            "Each client sends the dataset's count of values without keys to a new 12-partition topic:",
            "idempotent, `acks=all`, `linger.ms=5`, `batch.size=1000000`, no compression (kcat reads the",
            "values as lines from a file; the others generate them). Wall time includes connecting and the",
            "final flush; the harness then checks that the topic's end offsets add up to the count.",
            "",
        ]
        for d in datasets(rows, "produce"):
            figs = by_client(rows, "produce", d)
            md.append(f"### {int(figs[next(iter(figs))].rows[0]['records']):,} records of {size_label(d)}")
            md.append("")
            throughput_table(md, figs, "records/s")
            md.append("")
            ours = figs.get("ours")
            lib = librdkafka(figs, "produce")
            best = best_peer(figs)
            if ours and ours.ok and lib:
                rr = ours.rate / figs[lib].rate
                targets.append((f"produce {size_label(d)}: records/s ≥ librdkafka (rdkafka)", f"{rr:.2f}×", rr >= 1.0))
            if ours and ours.ok and best:
                md.append(
                    f"Best peer: {CLIENT_NAMES[best]}; kafka-once sends {ours.rate / figs[best].rate:.2f}× its records/s at {ours.cpu / figs[best].cpu:.2f}× its CPU per record."
                )
                md.append("")
        for metric, fname, title, unit, fmt in (
            ("rate", "produce-records-per-s.svg", "Produce (idempotent, acks=all): records/s", "records/s", n0),
            ("cpu", "produce-cpu-per-M.svg", "Produce: client CPU s per million records", "CPU s per M records", n2),
        ):
            if chart(os.path.join(out, fname), title, unit, chart_groups(rows, "produce", metric), fmt=fmt):
                charts.append((title, fname))

    # Exactly-once.
    dbos = by_client(rows, "dbos", datasets(rows, "dbos")[0]) if datasets(rows, "dbos") else {}
    if eo or dbos:
        md += [
            "## Exactly-once",
            "",
            "kafka-once: `kafka-once bench exactly-once` (a 12-partition topic of 100 B records with",
            "`LogAppendTime`; in each round raw consumption by our `Consumer`, then the runtime with a",
            "no-op workflow, a fresh group and a fresh journal with `fdatasync` group commits, at",
            "`Ordering::None` and `Ordering::Partition`; CPU of the whole process over the phase, from",
            "`getrusage`). DBOS: `@DBOS.kafka_consumer` with a no-op `@DBOS.workflow` (its default",
            "`ordering=\"none\"`, SQLite system database), a new group and database per round, until the",
            "count of workflows recorded as completed reaches the topic's size; its rate is given over the",
            "whole process (Python and DBOS start-up included) and from `DBOS.launch()` returning.",
            f"DBOS's `kafka_queue_polling_interval_sec`: {meta.get('dbos_queue_poll', '?')}.",
            "",
            "| mode | records/s median (min–max) | CPU s per M records | fsyncs/s | ratio to our raw consume (assigned) | ratio to our raw consume (group member) |",
            "|---|---|---|---|---|---|",
        ]
        series = {}
        for r in eo:
            series.setdefault(r["mode"], []).append(r)
        raw_rate = med([float(r["records_per_s"]) for r in series.get("raw", [])])
        group_rate = med([float(r["records_per_s"]) for r in series.get("raw_group", [])])
        names = {"raw": "raw consume (ours, assigned partitions)", "raw_group": "raw consume (ours, as a group member, joining included)", "None": "kafka-once exactly-once, `Ordering::None`", "Partition": "kafka-once exactly-once, `Ordering::Partition`", "None+step": "kafka-once exactly-once, `Ordering::None`, one durable step"}
        eo_best = None
        for m in ("raw", "raw_group", "None", "Partition", "None+step"):
            rs = series.get(m)
            if not rs:
                continue
            rates = [float(r["records_per_s"]) for r in rs]
            cpus = [float(r["cpu_s_per_M"]) for r in rs]
            fs = [float(r["fsyncs_per_s"]) for r in rs if r["fsyncs_per_s"]]
            q = f"{med(rates) / raw_rate:.3f}" if raw_rate else "–"
            g = f"{med(rates) / group_rate:.3f}" if group_rate else "–"
            md.append(f"| {names[m]} | {spread(rates, n0)} | {n2(med(cpus))} | {n0(med(fs)) if fs else '–'} | {q} | {g} |")
            if m in ("None", "Partition"):
                if eo_best is None or med(rates) > eo_best[1]:
                    eo_best = (m, med(rates))
        d_inner = None
        for f in dbos.values():
            if not f.ok:
                md.append(f"| DBOS | did not run: {'; '.join(f.failures)} | | | | |")
                continue
            inner = [int(r["records"]) / float(r["inner_s"]) for r in f.ok if r["inner_s"]]
            d_inner = med(inner)
            n = f'{int(f.ok[0]["records"]):,}'
            q = f"{med(f.rates) / raw_rate:.5f}" if raw_rate else "–"
            md.append(f"| DBOS ({n} records), whole process | {spread(f.rates, n1)} | {n0(f.cpu)} | – | {q} | – |")
            if inner:
                md.append(f"| DBOS ({n} records), after launch | {spread(inner, n1)} | – | – | {f'{d_inner / raw_rate:.5f}' if raw_rate else '–'} | – |")
            md.append("")
            md.append(f"DBOS peak RSS {spread(f.rss_mib, n1)} MiB.")
        md.append("")
        if eo_best and raw_rate:
            q = eo_best[1] / raw_rate
            targets.append((f"exactly-once ≥ 50% of our raw consume (best ordering: {eo_best[0]})", f"{100 * q:.0f}%", q >= 0.5))
        if eo_best and group_rate:
            q = eo_best[1] / group_rate
            targets.append((f"exactly-once ≥ 50% of our raw consume as a group member (best ordering: {eo_best[0]})", f"{100 * q:.0f}%", q >= 0.5))
        if eo_best and d_inner:
            q = eo_best[1] / d_inner
            targets.append(("exactly-once ≥ 100× DBOS (DBOS's rate after launch)", f"{q:.0f}×", q >= 100))
        if lat:
            md += [
                f"Latency from the record's append (broker `LogAppendTime`) to its durable completion, at {lat[0]['offered_per_s']} records/s offered for {lat[0]['secs']} s:",
                "",
                "| ordering | p50 ms | p99 ms |",
                "|---|---|---|",
            ]
            for r in lat:
                md.append(f"| `Ordering::{r['mode']}` | {r['p50_ms']} | {r['p99_ms']} |")
            md.append("")
        if "eo_process" in meta:
            md += [f"The exactly-once bench process as a whole: {meta['eo_process']}.", ""]
        bars = []
        for m in ("raw", "raw_group", "None", "Partition", "None+step"):
            rs = series.get(m)
            if rs:
                rates = [float(r["records_per_s"]) for r in rs]
                bars.append(("ours", names[m].replace("`", "").replace("kafka-once ", ""), med(rates), min(rates), max(rates)))
        for f in dbos.values():
            inner = [int(r["records"]) / float(r["inner_s"]) for r in f.ok if r["inner_s"]]
            bars.append(("dbos", "DBOS after launch", med(inner), min(inner) if inner else None, max(inner) if inner else None))
        if chart(os.path.join(out, "exactly-once-records-per-s.svg"), "Exactly-once: records/s", "records/s", [("100 B records", bars)], log=True):
            charts.append(("Exactly-once: records/s", "exactly-once-records-per-s.svg"))

    if "slow" in meta or "journal" in meta:
        md += ["## Memory with a slow workflow, and the journal on disk", ""]
        if "slow" in meta:
            md += [f"`kafka-once bench slow` (the runtime with default settings, a workflow that sleeps, on the 1 KB dataset): {meta['slow']}.", ""]
        if "journal" in meta:
            md += [f"`kafka-once bench journal` (the runtime with default settings, no-op workflow, `Ordering::None`): {meta['journal']}", ""]
            jt = read_tsv(os.path.join(out, "journal.tsv"))
            if jt:
                step = max(1, len(jt) // 12)
                md += ["| seconds | records completed | journal bytes on disk |", "|---|---|---|"]
                for r in jt[::step] + ([jt[-1]] if (len(jt) - 1) % step else []):
                    md.append(f"| {r['seconds']} | {int(r['completed']):,} | {int(r['journal_bytes']):,} |")
                md.append("")

    # Targets right after the header, charts at the end.
    t = ["## Targets (issue 7)", "", "Ratios against the peers measured in this run.", "", "| target | measured | met |", "|---|---|---|"]
    for name, val, ok in targets:
        t.append(f"| {name} | {val} | {'yes' if ok else '**no**'} |")
    t.append("")
    md = md[:head_end] + t + md[head_end:]
    if charts:
        md += ["## Charts", ""]
        for title, fname in charts:
            md += [f"![{title}]({fname})", ""]
    dec = os.path.join(out, "decode.md")
    if os.path.exists(dec):
        md += ["## Decoding alone (no broker)", "",
               "`cargo bench --bench decode`: `decode_batches` over captured fetch bytes (`testdata/bench/`), one thread, CPU time; median (best).", ""]
        md += [l for l in open(dec).read().splitlines()]
        md.append("")
    elif "decode" in meta:
        md += ["## Decoding alone (no broker)", "", f"Did not run: {meta['decode']}", ""]
    md += [
        "## Raw data",
        "",
        "`rounds.tsv` (every client run), `eo.tsv` and `latency.tsv` (from `kafka-once bench exactly-once`),",
        "`journal.tsv` (from `kafka-once bench journal`),",
        "`meta.tsv`, and each run's stderr in `logs/`.",
        "",
    ]
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(md))


if __name__ == "__main__":
    main()
