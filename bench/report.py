#!/usr/bin/env python3
"""Turns run.sh's runs.jsonl into the results table, ratios and target checks (md + json)."""
import argparse
import json
import sys

SERVERS = ["tessera", "iipsrv", "static"]
ORDER = ["tiles-cold", "tiles-hot", "info", "thumbs", "regions", "big", "jp2", "deflate",
         "png", "mixed"]
# (workload, other server, minimum Tessera/other req/s ratio), from the benchmark's issue.
TARGETS = [
    ("tiles-cold", "iipsrv", 3.0, "cold viewer tiles on TIFF-JPEG >= 3x iipsrv"),
    ("tiles-hot", "static", 0.7, "hot viewer tiles >= 0.7x nginx static"),
    ("info", "iipsrv", 2.0, "info.json >= 2x iipsrv"),
    ("thumbs", "iipsrv", 2.0, "thumbnails >= 2x iipsrv"),
    ("regions", "iipsrv", 2.0, "odd regions with downscale >= 2x iipsrv"),
    ("jp2", "iipsrv", 2.0, "JP2 tiles >= 2x iipsrv"),
]


def load(path):
    runs = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                runs.append(summarise(json.loads(line)))
    return runs


def summarise(r):
    res = r.get("result") or {}
    dur = res.get("duration_us", 0) / 1e6
    reqs = res.get("requests", 0)
    errors = sum(res.get(k, 0) for k in ("status_errors", "connect_errors", "read_errors",
                                          "write_errors", "timeouts"))
    return {
        "server": r["server"], "workload": r["workload"], "conc": r["conc"],
        "requests": reqs, "rps": reqs / dur if dur > 0 else 0.0,
        "p50_ms": res.get("p50_us", 0) / 1000.0, "p99_ms": res.get("p99_us", 0) / 1000.0,
        "errors": errors, "error_rate": errors / reqs if reqs else 1.0,
        "mb_per_s": res.get("bytes", 0) / dur / 1e6 if dur > 0 else 0.0,
        "kb_per_resp": res.get("bytes", 0) / reqs / 1024.0 if reqs else 0.0,
        "checked": (r.get("check") or {}).get("checked", 0),
        "check_failures": (r.get("check") or {"failures": 1}).get("failures", 1),
        "check_first": (r.get("check") or {}).get("first"),
        "rss_mb": r.get("rss_kb", 0) / 1024.0, "extra_rss_mb": r.get("extra_rss_kb", 0) / 1024.0,
    }


def ok(run):
    return (run is not None and run["requests"] > 0 and run["error_rate"] <= 0.01 and
            run["check_failures"] == 0)


def ratio(a, b):
    if not ok(a) or not ok(b) or b["rps"] <= 0:
        return None
    return a["rps"] / b["rps"]


def fmt_ratio(x):
    return "n/a" if x is None else "%.2fx" % x


def build(runs):
    idx = {(r["server"], r["workload"], r["conc"]): r for r in runs}
    keys = sorted({(r["workload"], r["conc"]) for r in runs},
                  key=lambda k: (ORDER.index(k[0]) if k[0] in ORDER else 99, k[1]))
    ratios = []
    for w, c in keys:
        t = idx.get(("tessera", w, c))
        ratios.append({"workload": w, "conc": c,
                       "tessera_over_iipsrv": ratio(t, idx.get(("iipsrv", w, c))),
                       "tessera_over_static": ratio(t, idx.get(("static", w, c)))})
    targets = []
    for w, other, need, text in TARGETS:
        for c in sorted({k[1] for k in keys if k[0] == w}):
            x = ratio(idx.get(("tessera", w, c)), idx.get((other, w, c)))
            targets.append({"target": text, "workload": w, "conc": c, "ratio": x,
                            "met": None if x is None else x >= need})
    t, i = idx.get(("tessera", "mixed", 16)), idx.get(("iipsrv", "mixed", 16))
    if t and i:
        targets.append({"target": "peak RSS under the mixed load <= iipsrv's",
                        "workload": "mixed", "conc": 16,
                        "ratio": t["rss_mb"] / i["rss_mb"] if i["rss_mb"] else None,
                        "met": t["rss_mb"] <= i["rss_mb"]})
    return keys, idx, ratios, targets


def markdown(runs, meta):
    keys, idx, ratios, targets = build(runs)
    out = []
    if meta:
        out.append("Run %s on %s (%d cores), Tessera %s, iipsrv %s, nginx %s, wrk %s, %s; "
                   "%d s per workload%s; total %d s." % (
                       meta.get("date"), meta.get("cpu"), meta.get("cores", 0),
                       meta.get("tessera_commit"), meta.get("iipsrv"), meta.get("nginx"),
                       meta.get("wrk"), meta.get("vips"), meta.get("duration_s", 0),
                       " (quick smoke run)" if meta.get("quick") else "",
                       meta.get("elapsed_s", 0)))
        out.append("")
    out.append("| workload | conc | server | req/s | p50 ms | p99 ms | errors | KB/response | "
               "checked (failed) | peak RSS MB |")
    out.append("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for w, c in keys:
        for s in SERVERS:
            r = idx.get((s, w, c))
            if not r:
                continue
            rss = "%.1f" % r["rss_mb"]
            if r["extra_rss_mb"]:
                rss += " (+%.1f memcached)" % r["extra_rss_mb"]
            out.append("| %s | %d | %s | %.1f | %.2f | %.2f | %d | %.1f | %d (%d) | %s |" % (
                w, c, s, r["rps"], r["p50_ms"], r["p99_ms"], r["errors"], r["kb_per_resp"],
                r["checked"], r["check_failures"], rss))
    out.append("")
    out.append("| workload | conc | Tessera/iipsrv | Tessera/static |")
    out.append("|---|---:|---:|---:|")
    for r in ratios:
        if r["tessera_over_iipsrv"] is None and r["tessera_over_static"] is None:
            continue
        out.append("| %s | %d | %s | %s |" % (r["workload"], r["conc"],
                                               fmt_ratio(r["tessera_over_iipsrv"]),
                                               fmt_ratio(r["tessera_over_static"])))
    out.append("")
    out.append("| target | conc | measured | met |")
    out.append("|---|---:|---:|---|")
    for t in targets:
        met = "n/a (errors or missing)" if t["met"] is None else ("yes" if t["met"] else "NO")
        out.append("| %s | %d | %s | %s |" % (t["target"], t["conc"], fmt_ratio(t["ratio"]),
                                              met))
    out.append("")
    for r in runs:
        if r["check_failures"]:
            out.append("Check failed: %s %s c=%d: %s" % (r["server"], r["workload"], r["conc"],
                                                         r["check_first"]))
    out.append("Ratios compare req/s; n/a means a side is missing, had over 1% errors, or "
               "served a sampled URL with the wrong status or pixel size. "
               "RSS is the sum of VmHWM over the server's processes (iipsrv: its FastCGI "
               "processes; nginx: master and workers).")
    return "\n".join(out) + "\n", {"meta": meta, "runs": runs, "ratios": ratios,
                                   "targets": targets}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("runs")
    ap.add_argument("--line", action="store_true", help="print the last run only")
    ap.add_argument("--meta")
    ap.add_argument("--md")
    ap.add_argument("--json")
    a = ap.parse_args()
    runs = load(a.runs)
    if a.line:
        r = runs[-1]
        print("run.sh: %-10s %-7s c=%-2d %9.1f req/s  p50 %7.2f ms  p99 %8.2f ms  err %d  "
              "%.1f KB/resp  checked %d, failed %d%s  rss %.1f MB" % (
                  r["workload"], r["server"], r["conc"], r["rps"], r["p50_ms"], r["p99_ms"],
                  r["errors"], r["kb_per_resp"], r["checked"], r["check_failures"],
                  " (%s)" % r["check_first"] if r["check_first"] else "", r["rss_mb"]),
              file=sys.stderr)
        return
    meta = {}
    if a.meta:
        with open(a.meta) as f:
            meta = json.load(f)
    md, data = markdown(runs, meta)
    sys.stdout.write(md)
    if a.md:
        with open(a.md, "w") as f:
            f.write("# Tessera benchmark results\n\n" + md)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(data, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
