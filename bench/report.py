#!/usr/bin/env python3
"""bench/report.py RAW OUTDIR NOTE - tables from bench/run.sh's raw results.

RAW holds lines "R <workload> <server> <metric> <value>", one per phase
and repetition.  Prints the tables (medians over repetitions) as text,
writes OUTDIR/results.md (the same, Markdown) and OUTDIR/chart.gp +
chart.dat (gnuplot: the speed ratio Tessera/Ganesha per row).
"""
import os
import statistics
import sys

SERVERS = ["tessera", "tessera-noinline", "tessera-wb", "tessera-async",
           "tessera-s3", "ganesha", "ganesha5"]
GANESHAS = ("ganesha", "ganesha5")
LOWER_BETTER = ("_ms", "us_per_entry", "_MiB", "secs", "_per_file")
# workload prefix -> (title, metrics shown, in order)
GROUPS = [
    ("seqwrite", "1. Sequential write, 1 MiB requests, 8 in flight, COMMIT",
     ["MBps", "p50_ms", "p99_ms", "rss_peak_MiB", "rssanon_peak_MiB"]),
    ("seqread", "2. Sequential read, 1 MiB requests, 8 in flight",
     ["MBps", "p50_ms", "p99_ms"]),
    ("randrw", "3. Random 4 KiB reads and writes (50/50), 16 in flight",
     ["ops_s", "p50_ms", "p99_ms", "rssanon_growth_MiB",
      "rssanon_after_10s_MiB"]),
    ("small", "4. Small files (4 KiB): create+write+COMMIT, GETATTR, read,"
     " remove; 8 in flight per client",
     ["files_s", "p99_ms", "flushes_per_file", "puts_per_file"]),
    ("meta", "5. Metadata: LOOKUP+GETATTR storm on a warm tree",
     ["files_s", "p50_ms", "p99_ms"]),
    ("readdir", "6. READDIRPLUS of big directories (server restarted first)",
     ["files_s", "secs", "us_per_entry", "rss_growth_MiB",
      "rssanon_growth_MiB"]),
    ("jfs", "7. juicefs bench workload (per thread: big file 1 MiB I/O,"
     " 100 x 128 KiB files, stat), synchronous I/O",
     ["MBps", "files_s", "flushes_per_file", "puts_per_file"]),
]
MAIN = {"MBps", "ops_s", "files_s", "us_per_entry"}

# The gateway's memory beyond buffer_limit under the write benchmark, as
# bench/README ("Memory") states it, for tesserad's defaults (4 MiB
# blocks, upload_threads 8) and the benchmark's one client with 8 x 1 MiB
# WRITEs in flight.  Keep the two in step.
BLOCK_MIB = 4
WBUF_KEEP = 4          # cache/bufpool.c: whole-block buffers kept for reuse
UPLOAD_THREADS = 8     # each may copy one block (unaligned slices)
REQUESTS_MIB = 8       # NFS requests read but not answered
BASE_MIB = 10          # code, libraries, LMDB map pages, idle heap


def fixed_overhead_mib(cores):
    """FIXED OVERHEAD of bench/README; malloc arenas: 8 per core, each
    keeping about 1.25 blocks of freed memory on average."""
    arenas = 8 * cores * BLOCK_MIB * 1.25
    return (BASE_MIB + (WBUF_KEEP + UPLOAD_THREADS) * BLOCK_MIB +
            REQUESTS_MIB + arenas)


def lower_better(metric):
    return metric.endswith(LOWER_BETTER)


def load(path):
    vals = {}
    for line in open(path):
        f = line.split()
        if len(f) != 5 or f[0] != "R" or f[1] == "setup":
            continue
        try:
            vals.setdefault((f[1], f[2], f[3]), []).append(float(f[4]))
        except ValueError:
            pass
    return {k: statistics.median(v) for k, v in vals.items()}, vals


def fmt(v):
    if v is None:
        return "-"
    if abs(v) >= 100:
        return "%.0f" % v
    if abs(v) >= 10:
        return "%.1f" % v
    return "%.3g" % v


def ratio(t, g, metric):
    if t is None or g is None or t == 0 or g == 0:
        return None
    return g / t if lower_better(metric) else t / g


def best_peer(v, metric):
    """The better of the Ganesha figures present (4.3 and 5.9)."""
    g = [v[s] for s in GANESHAS if v.get(s) is not None]
    if not g:
        return None
    return min(g) if lower_better(metric) else max(g)


def ceiling_for(wl, metric, med):
    if metric != "MBps":
        return "-"
    net = med.get(("ceiling", "-", "loopback_MBps"))
    dw = med.get(("ceiling", "-", "disk_write_MBps"))
    dr = med.get(("ceiling", "-", "disk_read_MBps"))
    if "write" in wl:
        return "disk %s, net %s" % (fmt(dw), fmt(net))
    if "cold" in wl:
        return "disk %s, net %s" % (fmt(dr), fmt(net))
    return "net %s" % fmt(net)


def main():
    raw, outdir = sys.argv[1], sys.argv[2]
    note = sys.argv[3] if len(sys.argv) > 3 else ""
    med, allvals = load(raw)
    servers = [s for s in SERVERS if any(k[1] == s for k in med)]
    tess = [s for s in servers if s.startswith("tessera")]
    wls = []
    for (wl, _, _) in med:
        if wl not in wls and wl not in ("ceiling", "buffer_limit"):
            wls.append(wl)
    md = ["# Tessera vs NFS-Ganesha", "", "Run: " + note, "",
          "Medians over repetitions.  *speed* columns: Tessera/Ganesha for"
          " throughput, Ganesha/Tessera for times, latencies and memory,"
          " so above 1.0 always means Tessera is better.  G is the better"
          " of the Ganesha columns present in the row (ganesha: 4.3,"
          " Debian 12; ganesha5: 5.9, bookworm-backports).", ""]
    md += ["## Ceilings", "", "| ceiling | MB/s |", "|---|---|"]
    for m in ("loopback_MBps", "disk_write_MBps", "disk_read_MBps"):
        md.append("| %s | %s |" % (m, fmt(med.get(("ceiling", "-", m)))))
    md.append("")
    chart = []
    head = (["row"] + servers + ["speed %s/G" % t.replace("tessera", "T")
                                 for t in tess] + ["ceiling MB/s"])
    for prefix, title, metrics in GROUPS:
        rows = []
        for wl in wls:
            if not wl.startswith(prefix):
                continue
            for m in metrics:
                v = {s: med.get((wl, s, m)) for s in servers}
                if all(x is None for x in v.values()):
                    continue
                rs = [ratio(v[t], best_peer(v, m), m) for t in tess]
                name = "%s %s%s" % (wl, m,
                                    " (lower better)" if lower_better(m)
                                    else "")
                rows.append([name] + [fmt(v[s]) for s in servers] +
                            [fmt(r) for r in rs] +
                            [ceiling_for(wl, m, med)])
                if m in MAIN:
                    chart.append((wl + " " + m, rs))
        if not rows:
            continue
        md += ["## " + title, "", "| " + " | ".join(head) + " |",
               "|" + "---|" * len(head)]
        md += ["| " + " | ".join(r) + " |" for r in rows]
        md.append("")
    errs = [(k, v) for k, v in med.items() if k[2] == "errors" and v > 0]
    if errs:
        md += ["## Errors (median count per phase)", ""]
        md += ["- %s on %s: %s" % (k[0], k[1], fmt(v)) for k, v in errs]
        md.append("")
    md += ["## Memory under the write benchmark", ""]
    cores = os.cpu_count() or 1
    over = fixed_overhead_mib(cores)
    for t in tess:
        peak = med.get(("seqwrite", t, "rss_peak_MiB"))
        lim = med.get(("buffer_limit", t, "configured_MiB"))
        if peak is None:
            continue
        if lim is None:
            verdict = "buffer_limit not recorded"
        else:
            worst = max(allvals.get(("seqwrite", t, "rss_peak_MiB"), [peak]))
            ok = worst <= lim + over
            verdict = "%s (highest repetition %s MiB %s %s MiB)" % (
                "yes" if ok else "NO", fmt(worst), "<=" if ok else ">",
                fmt(lim + over))
        md.append("- %s: peak RSS %s MiB during seqwrite (RssAnon %s"
                  " MiB); configured buffer_limit %s MiB; peak RSS"
                  " minus buffer_limit: %s MiB; stated fixed overhead"
                  " %s MiB (bench/README, %d cores); within buffer_limit"
                  " + overhead: %s" %
                  (t, fmt(peak),
                   fmt(med.get(("seqwrite", t, "rssanon_peak_MiB"))),
                   fmt(lim), fmt(peak - lim) if lim is not None else "-",
                   fmt(over), cores, verdict))
    md.append("")
    md += ["## Every repetition", "", "```"]
    for k in sorted(allvals):
        md.append("%s %s %s %s" % (k[0], k[1], k[2],
                                   " ".join(fmt(x) for x in allvals[k])))
    md += ["```", ""]
    text = "\n".join(md)
    with open(os.path.join(outdir, "results.md"), "w") as f:
        f.write(text)
    # Text for the terminal: everything but the per-repetition dump.
    print(text.split("## Every repetition")[0].rstrip())
    if chart and tess:
        with open(os.path.join(outdir, "chart.dat"), "w") as f:
            for name, rs in chart:
                f.write('"%s" %s\n' % (name, " ".join(
                    "%.4f" % r if r is not None else "NaN" for r in rs)))
        cols = " , ".join(
            "'chart.dat' using %d:xtic(1) title '%s / best ganesha'" %
            (i + 2, t) for i, t in enumerate(tess))
        with open(os.path.join(outdir, "chart.gp"), "w") as f:
            f.write("""cd '%s'
set terminal png size 1400,800 noenhanced
set output 'chart.png'
set title 'Tessera vs NFS-Ganesha: speed ratio (above 1 = Tessera faster)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y 2
set yrange [0.001:100]
set grid ytics
set xtics rotate by -50 font ',9'
set bmargin 14
set key top right
plot %s, 1 with lines lw 2 lc rgb 'black' title 'parity'
""" % (outdir, cols))


if __name__ == "__main__":
    main()
