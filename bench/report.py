#!/usr/bin/env python3
"""Turns run.sh's runs.jsonl into the results tables, ratios and target checks (md + json)."""
import argparse
import json
import os
import sys

SERVERS = ["tessera", "iipsrv", "iipsrv13", "static"]
NAMES = {"tessera": "Tessera", "iipsrv": "iipsrv 1.1", "iipsrv13": "iipsrv 1.3",
         "static": "nginx static"}
ORDER = ["tiles-cold", "jp2", "deflate", "thumbs", "regions", "big", "info", "png", "mixed",
         "tiles-hot"]
WHAT = {
    "tiles-cold": "viewer tiles, TIFF-JPEG",
    "jp2": "viewer tiles, JPEG 2000 (256 px grid)",
    "deflate": "viewer tiles, deflate TIFF",
    "thumbs": "thumbnails !200,200 and ,150",
    "regions": "odd regions -> 800 px",
    "big": "full/4000, renders",
    "info": "info.json",
    "png": "viewer tiles as PNG",
    "mixed": "viewer mix",
    "tiles-hot": "viewer tiles of one image, repeated",
}
MODES = {"cold": "cold", "hot": "hot (caches)", "caches-off": "caches off",
         "static": "static file"}
# (workload, other server, minimum Tessera/other req/s ratio), from the benchmark's issue.
TARGETS = [
    ("tiles-cold", "iipsrv", 3.0, "cold viewer tiles on TIFF-JPEG >= 3x iipsrv 1.1"),
    ("tiles-hot", "static", 0.7, "hot viewer tiles >= 0.7x nginx static"),
    ("info", "iipsrv", 2.0, "info.json >= 2x iipsrv 1.1"),
    ("thumbs", "iipsrv", 2.0, "thumbnails >= 2x iipsrv 1.1"),
    ("regions", "iipsrv", 2.0, "odd regions with downscale >= 2x iipsrv 1.1"),
    ("jp2", "iipsrv", 2.0, "JP2 tiles >= 2x iipsrv 1.1"),
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
    n503 = res.get("status_503")  # only where run.sh counts statuses (big, mixed)
    hard = errors - (n503 or 0)   # errors other than 503
    check = r.get("check") or {"checked": 0, "failures": 1, "first": "no check"}
    list_len = r.get("list_len", 0)
    return {
        "server": r["server"], "workload": r["workload"], "conc": r["conc"],
        "cores": r.get("cores", 0), "mode": r.get("mode", "?"), "list_len": list_len,
        "passes": reqs / list_len if list_len else 0.0,
        "server_cpus": r.get("server_cpus"), "wrk_cpus": r.get("wrk_cpus"),
        "requests": reqs, "rps": reqs / dur if dur > 0 else 0.0,
        # answers that were neither 503 nor any other error, per second: what is compared
        "ok_rps": (reqs - errors) / dur if dur > 0 else 0.0,
        "p50_ms": res.get("p50_us", 0) / 1000.0, "p99_ms": res.get("p99_us", 0) / 1000.0,
        "errors": errors, "status_503": n503,
        "error_rate": hard / reqs if reqs else 1.0,
        "mb_per_s": res.get("bytes", 0) / dur / 1e6 if dur > 0 else 0.0,
        "kb_per_resp": res.get("bytes", 0) / reqs / 1024.0 if reqs else 0.0,
        # where 503s are counted: body KB per answer that was not an error (wrk's bytes above
        # include headers and the 503s' bodies)
        "kb_per_ok_resp": (res["ok_body_bytes"] / (reqs - errors) / 1024.0
                           if "ok_body_bytes" in res and reqs > errors else None),
        "checked": check.get("checked", 0), "check_failures": check.get("failures", 1),
        "check_first": check.get("first"),
        "check_near": check.get("near", 0), "check_first_near": check.get("first_near"),
        "rss_mb": r.get("rss_kb", 0) / 1024.0,
        "front_rss_mb": r.get("front_rss_kb", 0) / 1024.0,
        "extra_rss_mb": r.get("extra_rss_kb", 0) / 1024.0,
        "total_rss_mb": (r.get("rss_kb", 0) + r.get("front_rss_kb", 0) +
                         r.get("extra_rss_kb", 0)) / 1024.0,
    }


def why_not(run):
    """None when the run counts, else why it does not."""
    if run is None:
        return "missing"
    if run["requests"] == 0:
        return "no answers"
    if run["check_failures"]:
        return "check failed"
    if run["error_rate"] > 0.01:
        return "errors %.1f%%" % (100 * run["error_rate"])
    return None


def speed(run):
    # Where 503s are counted apart, only real answers count; elsewhere every answer does (and
    # a run with over 1% errors is n/a anyway).
    return run["ok_rps"] if run["status_503"] is not None else run["rps"]


def kb(run):
    """KB per response; where 503s are counted, body KB per answer that was not an error."""
    return run["kb_per_resp"] if run["kb_per_ok_resp"] is None else run["kb_per_ok_resp"]


def ratio(a, b):
    if why_not(a) or why_not(b) or speed(b) <= 0:
        return None
    return speed(a) / speed(b)


def fmt_ratio(x):
    return "n/a" if x is None else "%.2fx" % x


def fmt_rps(x):
    return "%.1f" % x if x < 100 else "%.0f" % x


def label(run):
    m = MODES.get(run["mode"], run["mode"])
    if run["mode"] == "cold" and run["passes"] > 1:
        m += ", wrapped x%.1f" % run["passes"]
    return m


def build(runs):
    idx = {(r["server"], r["workload"], r["cores"], r["conc"]): r for r in runs}
    keys = sorted({(r["workload"], r["cores"], r["conc"]) for r in runs},
                  key=lambda k: (ORDER.index(k[0]) if k[0] in ORDER else 99, k[1], k[2]))
    present = [s for s in SERVERS if any(r["server"] == s for r in runs)]
    rows = []
    for w, n, c in keys:
        t = idx.get(("tessera", w, n, c))
        row = {"workload": w, "cores": n, "conc": c, "servers": {}}
        for s in present:
            r = idx.get((s, w, n, c))
            if r is None:
                continue
            row["servers"][s] = {"rps": speed(r), "ok": why_not(r) is None,
                                 "why_not": why_not(r), "label": label(r),
                                 "status_503": r["status_503"],
                                 "kb_per_resp": kb(r),
                                 "peak_rss_mb": r["total_rss_mb"]}
        for s in present:
            if s != "tessera" and (s, w, n, c) in idx:
                row["tessera_over_" + s] = ratio(t, idx.get((s, w, n, c)))
        rows.append(row)
    targets = []
    for w, other, need, text in TARGETS:
        for n, c in sorted({(k[1], k[2]) for k in keys if k[0] == w}):
            if (other, w, n, c) not in idx:
                continue
            x = ratio(idx.get(("tessera", w, n, c)), idx.get((other, w, n, c)))
            targets.append({"target": text, "workload": w, "cores": n, "conc": c, "ratio": x,
                            "met": None if x is None else x >= need})
    for n, c in sorted({(k[1], k[2]) for k in keys if k[0] == "mixed"}):
        t, i = idx.get(("tessera", "mixed", n, c)), idx.get(("iipsrv", "mixed", n, c))
        if t and i and i["total_rss_mb"]:
            targets.append({"target": "peak RSS under the mixed load <= iipsrv 1.1's "
                                      "(with nginx and memcached)",
                            "workload": "mixed", "cores": n, "conc": c,
                            "ratio": t["total_rss_mb"] / i["total_rss_mb"],
                            "met": t["total_rss_mb"] <= i["total_rss_mb"]})
    return keys, idx, present, rows, targets


def markdown(runs, meta):
    keys, idx, present, rows, targets = build(runs)
    out = []
    if meta:
        out.append("Run %s on %s (%d cores; load average %s at the end), Tessera %s, "
                   "iipsrv %s, iipsrv 1.3: %s, nginx %s, wrk %s, %s; %d s per run%s; "
                   "total %d s." % (
                       meta.get("date"), meta.get("cpu"), meta.get("machine_cores", 0),
                       meta.get("loadavg_end", "?"), meta.get("tessera_commit"),
                       meta.get("iipsrv"), meta.get("iipsrv13", "none"), meta.get("nginx"),
                       meta.get("wrk"), meta.get("vips"), meta.get("duration_s", 0),
                       " (quick smoke run)" if meta.get("quick") else "",
                       meta.get("elapsed_s", 0)))
        if meta.get("page_cache"):
            out.append("")
            out.append("Page cache: %s." % meta["page_cache"])
        if meta.get("url_lists_differ"):
            out.append("")
            out.append("**The servers' URL lists differ** (they should be the same requests): "
                       + meta["url_lists_differ"])
        out.append("")
    others = [s for s in present if s != "tessera"]
    head = ["workload", "cores", "conc", "mode"] + ["%s req/s" % NAMES[s] for s in present]
    head += ["Tessera / %s" % NAMES[s] for s in others]
    head += ["KB/response (%s)" % " / ".join(NAMES[s] for s in present),
             "peak RSS MB (%s)" % " / ".join(NAMES[s] for s in present)]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * 4 + "---:|" * (len(head) - 4))
    for row in rows:
        w, n, c = row["workload"], row["cores"], row["conc"]
        cells = [w, str(n), str(c)]
        labels = sorted({v["label"] for s, v in row["servers"].items() if s != "static"} or
                        {v["label"] for v in row["servers"].values()})
        cells.append("; ".join(labels))
        for s in present:
            v = row["servers"].get(s)
            if v is None:
                cells.append("-")
                continue
            txt = fmt_rps(v["rps"])
            if v["status_503"]:
                txt += " (+%d 503s)" % v["status_503"]
            if not v["ok"]:
                txt = "n/a (%s; %s)" % (v["why_not"], txt)
            cells.append(txt)
        for s in others:
            cells.append(fmt_ratio(row.get("tessera_over_" + s)) if s in row["servers"] else "-")
        cells.append(" / ".join("%.1f" % row["servers"][s]["kb_per_resp"]
                                if s in row["servers"] else "-" for s in present))
        cells.append(" / ".join("%.0f" % row["servers"][s]["peak_rss_mb"]
                                if s in row["servers"] else "-" for s in present))
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    out.append("Workloads: " + "; ".join("`%s` %s" % (w, WHAT[w]) for w in ORDER
                                        if any(k[0] == w for k in keys)) + ".")
    out.append("")
    bad = [r for r in runs if why_not(r)]
    if bad:
        out.append("**Not counted** (their cells say n/a):")
        out.append("")
        for r in bad:
            detail = ""
            if r["check_failures"]:
                detail = ": %d of %d sampled URLs failed, first %s" % (
                    r["check_failures"], r["checked"], r["check_first"])
            out.append("- %s %s, %d core(s), c=%d: %s%s" % (
                NAMES.get(r["server"], r["server"]), r["workload"], r["cores"], r["conc"],
                why_not(r), detail))
        out.append("")
    near = [r for r in runs if r["check_near"] and not why_not(r)]
    if near:
        out.append("**1 px off** (counted: a rounding difference, not less work):")
        out.append("")
        for r in near:
            out.append("- %s %s, %d core(s), c=%d: %d of %d sampled answers, first %s" % (
                NAMES.get(r["server"], r["server"]), r["workload"], r["cores"], r["conc"],
                r["check_near"], r["checked"], r["check_first_near"]))
        out.append("")
    out.append("Req/s counts answers that were not errors; where 503s are counted (big, mixed) "
               "they are shown apart and not counted as answers, and KB/response there is body KB per "
               "answer. A ratio is n/a when either "
               "side is missing, had over 1% errors other than 503, or served a sampled URL "
               "with the wrong status, format or pixel size (1 px off is allowed and listed). Modes: cold = distinct URLs over "
               "distinct files with caches on, more of them than the run got through (else "
               "\"wrapped xN\"); caches off = the distinct URLs could not cover the run, so "
               "both servers ran without response and tile caches (image metadata caches on, as "
               "iipsrv 1.1 cannot turn its off); hot = one image's tiles "
               "repeated after a warm-up pass, which measures caches. Peak RSS is the sum of "
               "VmHWM: Tessera's process; iipsrv's FastCGI processes + its nginx (master and "
               "workers) + memcached (none when caches are off); nginx static's master and "
               "workers. The per-run table below splits it.")
    out.append("")
    out.append("| target | cores | conc | measured | met |")
    out.append("|---|---:|---:|---:|---|")
    for t in targets:
        met = "n/a (errors or missing)" if t["met"] is None else ("yes" if t["met"] else "NO")
        out.append("| %s | %d | %d | %s | %s |" % (t["target"], t["cores"], t["conc"],
                                                   fmt_ratio(t["ratio"]), met))
    out.append("")
    out.append("### Every run")
    out.append("")
    out.append("| workload | cores | conc | server | mode | req/s | p50 ms | p99 ms | errors "
               "(503s) | KB/response | URL list (passes) | checked (failed) | "
               "peak RSS MB: server + nginx + memcached |")
    out.append("|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for w, n, c in keys:
        for s in SERVERS:
            r = idx.get((s, w, n, c))
            if not r:
                continue
            errs = "%d" % r["errors"]
            if r["status_503"] is not None:
                errs += " (%d)" % r["status_503"]
            out.append("| %s | %d | %d | %s | %s | %s | %.2f | %.2f | %s | %.1f | %d (%.2f) | "
                       "%d (%d%s) | %.1f + %.1f + %.1f |" % (
                           w, n, c, NAMES[s], label(r), fmt_rps(speed(r)), r["p50_ms"],
                           r["p99_ms"], errs, kb(r), r["list_len"], r["passes"],
                           r["checked"], r["check_failures"],
                           ", %d 1 px off" % r["check_near"] if r["check_near"] else "",
                           r["rss_mb"], r["front_rss_mb"],
                           r["extra_rss_mb"]))
    quality = load_quality(meta.get("quality_file")) if meta else []
    out.extend(quality_md(quality))
    return "\n".join(out) + "\n", {"meta": meta, "runs": runs, "rows": rows,
                                   "targets": targets, "quality": quality}


def load_quality(path):
    recs = []
    if path and os.path.exists(path):
        with open(path) as f:
            recs = [json.loads(line) for line in f if line.strip()]
    return recs


def quality_md(recs):
    """One row per render, a PSNR column per server and format."""
    if not recs:
        return []
    cols = [(s, f) for s in ("tessera", "iipsrv", "iipsrv13") for f in ("png", "jpg")
            if any(r["server"] == s and r["format"] == f for r in recs)]
    cases = []
    for r in recs:
        c = (r["image"], r["region"], r["size"])
        if c not in cases:
            cases.append(c)
    out = ["", "### Downscale quality", "",
           "PSNR in dB of each render against libvips's Lanczos3 resize (`vips resize --kernel "
           "lanczos3`) of the same region of the full resolution; higher is closer. JPEG answers "
           "are at quality 85 on every server, so they include the encoder's loss; PNG shows the "
           "resampling alone. Made by `bench/quality.py`, caches off.", "",
           "| image | region | size | " + " | ".join("%s %s" % (NAMES[s], f) for s, f in cols)
           + " |", "|---|---|---|" + "---:|" * len(cols)]
    for image, region, size in cases:
        cells = []
        for s, f in cols:
            r = next((r for r in recs if (r["server"], r["format"], r["image"], r["region"],
                                          r["size"]) == (s, f, image, region, size)), None)
            if not r:
                cells.append("-")
            elif "error" in r:
                cells.append("failed")
            else:
                off = "" if r["got"] == r["want"] else " (%dx%d)" % tuple(r["got"])
                cells.append("%.2f%s" % (r["psnr"], off))
        out.append("| %s | %s | %s | %s |" % (image, region, size, " | ".join(cells)))
    return out


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
        print("run.sh: %-10s %-8s %dc c=%-2d %-10s %9s req/s  p50 %7.2f ms  p99 %8.2f ms  "
              "err %d%s  %.1f KB/resp  passes %.2f  checked %d, failed %d%s%s  rss %.1f MB" % (
                  r["workload"], r["server"], r["cores"], r["conc"], r["mode"],
                  fmt_rps(speed(r)), r["p50_ms"], r["p99_ms"], r["errors"],
                  "" if r["status_503"] is None else " (503: %d)" % r["status_503"],
                  kb(r), r["passes"], r["checked"], r["check_failures"],
                  " (%s)" % r["check_first"] if r["check_first"] else "",
                  " (1 px off: %d)" % r["check_near"] if r["check_near"] else "",
                  r["total_rss_mb"]),
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
