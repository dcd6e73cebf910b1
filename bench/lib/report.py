#!/usr/bin/env python3
"""Summarise one bench run: report.py RESULTS_DIR.

Reads RESULTS_DIR/order (the scenarios), meta.txt, and per scenario and round
<scenario>/r<N>/: the wrk outputs (the JSON line wrk/report.lua prints), iperf3 -J,
CPU snapshots before and after each test (*.cpu0, *.cpu1), the commands (*.cmd), the
agent's memory under many connections (rss.json and rss.out, bpfmesh-l7) and the
round's verdict (UNSUPPORTED or FAILED with the reason; neither: measured).
Writes table.md (Markdown), summary.json, chart.dat (for lib/chart.gp) and status.txt
(one line per scenario: name, ok|unsupported|failed, reason). With several rounds every
figure is the median over the measured rounds. Exit 1 when a scenario failed or one of
its measurements carried no traffic.
"""
import json
import os
import re
import statistics
import sys

CLK_TCK = os.sysconf("SC_CLK_TCK")

# Goals (not assertions): scenario, metric key, label, comparison, goal, baseline. With a
# baseline scenario the goal is a ratio to that scenario's figure in the same run ("direct",
# or "sidecar-l7" for the L7 goals); with None it is an absolute figure in UNITS[key].
# Issue 4: the L4 scenarios. The bpfmesh-l7 issue: HTTP routing by the agent beside the
# sidecar-l7 model.
L7_BASE = "sidecar-l7"
GOALS = [
    ("bpfmesh-l4", "rr16.rps", "rps, 16 conns", ">=", 0.97, "direct"),
    ("bpfmesh-l4", "rr64.rps", "rps, 64 conns", ">=", 0.97, "direct"),
    ("bpfmesh-l4", "conn.rps", "new conn/s", ">=", 0.95, "direct"),
    ("bpfmesh-l4", "iperf3.gbps", "iperf3", ">=", 0.97, "direct"),
    ("bpfmesh-l4-bypass", "rr16.rps", "rps, 16 conns", ">=", 1.15, "direct"),
    ("bpfmesh-l4-bypass", "rr16.p99_ms", "p99, 16 conns", "<=", 1.00, "direct"),
    ("bpfmesh-l4-bypass", "iperf3.gbps", "iperf3", ">=", 1.00, "direct"),
    ("bpfmesh-tc", "rr16.rps", "rps, 16 conns", ">=", 0.95, "direct"),
    ("bpfmesh-tc", "rr64.rps", "rps, 64 conns", ">=", 0.95, "direct"),
    ("bpfmesh-l7", "rr16.rps", "rps, 16 conns", ">=", 2.00, L7_BASE),
    ("bpfmesh-l7", "rr16.rps", "rps, 16 conns", ">=", 0.60, "direct"),
    ("bpfmesh-l7", "rr16.p99_ms", "p99, 16 conns", "<=", 1.00, L7_BASE),
    ("bpfmesh-l7", "rr16.node_cpu_us", "node CPU µs/req, 16 conns", "<=", 0.50, L7_BASE),
    ("bpfmesh-l7", "rss.vmhwm_mib", "agent RSS (VmHWM), {rss_conns} conns open", "<=", 32, None),
]
# Units and formats of the figures the goals name.
UNITS = {"rps": ("{:.0f}", "rps"), "p99_ms": ("{:.3f}", "ms"), "node_cpu_us": ("{:.1f}", "µs"),
         "gbps": ("{:.2f}", "Gbit/s"), "vmhwm_mib": ("{:.1f}", "MiB")}


def read_text(path, default=""):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def read_kv(path):
    d = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2:
                d[parts[0]] = float(parts[1])
    return d


def cpu_delta(rdir, test):
    """CPU used during one test: the machine's busy seconds and each cgroup's."""
    try:
        a = read_kv(os.path.join(rdir, test + ".cpu0"))
        b = read_kv(os.path.join(rdir, test + ".cpu1"))
    except OSError:
        return None
    busy = (b["sys_busy_ticks"] - a["sys_busy_ticks"]) / CLK_TCK
    idle = (b["sys_idle_ticks"] - a["sys_idle_ticks"]) / CLK_TCK
    cg = {k[3:]: (b[k] - a.get(k, 0.0)) / 1e6 for k in b if k.startswith("cg:")}
    wall = (b["wall_ns"] - a["wall_ns"]) / 1e9
    return {"wall_s": wall, "busy_s": busy,
            "busy_pct": 100.0 * busy / (busy + idle) if busy + idle else 0.0,
            "mesh_s": sum(v for k, v in cg.items() if k.startswith("mesh/")),
            # CPU busy outside the run's cgroups: kernel threads (ksoftirqd, kworkers) and
            # anything else running on the machine. Near 0 on a quiet machine under keepalive.
            "elsewhere_cores": max(0.0, busy - sum(cg.values())) / wall if wall else 0.0,
            "cgroups_s": cg}


def wrk_json(rdir, test):
    try:
        with open(os.path.join(rdir, test + ".out")) as f:
            for line in f:
                if line.startswith("JSON "):
                    return json.loads(line[5:])
    except (OSError, ValueError):
        pass
    return None


def round_metrics(rdir, tests):
    """The figures of one measured round, as a flat dict ("rr16.rps": ...)."""
    m = {}
    for test in tests:
        r = wrk_json(rdir, test)
        if r is None:
            continue
        dur = r["duration_us"] / 1e6 or 1.0
        req = r["requests"] or 1
        cpu = cpu_delta(rdir, test) or {}
        m[test + ".requests"] = r["requests"]
        m[test + ".rps"] = r["requests"] / dur
        for p in ("p50", "p90", "p99"):
            m[test + "." + p + "_ms"] = r[p + "_us"] / 1000.0
        m[test + ".errors"] = sum(v for k, v in r.items() if k.startswith("err_"))
        m[test + ".node_cpu_us"] = cpu.get("busy_s", 0.0) * 1e6 / req
        m[test + ".mesh_cpu_us"] = cpu.get("mesh_s", 0.0) * 1e6 / req
        m[test + ".node_busy_pct"] = cpu.get("busy_pct", 0.0)
        m[test + ".elsewhere_cores"] = cpu.get("elsewhere_cores", 0.0)
        for k, v in cpu.get("cgroups_s", {}).items():
            m[test + ".cg." + k + "_us"] = v * 1e6 / req
    # The agent's memory with many connections open (bpfmesh-l7's rss step): rss.json from
    # the samples of /proc/<agent>/status, rss.out from the wrk that held the connections.
    try:
        with open(os.path.join(rdir, "rss.json")) as f:
            d = json.load(f)
        m["rss.conns"] = d["conns"]
        m["rss.conns_max"] = d["conns_max"]
        m["rss.samples_full"] = d["samples_full"]
        m["rss.vmhwm_mib"] = d["vmhwm_kib"] / 1024.0
        m["rss.vmrss_mib"] = d["vmrss_kib"] / 1024.0
        m["rss.fds_max"] = d["fds_max"]
        m["rss.upstream_max"] = d["upstream_max"]
        r = wrk_json(rdir, "rss")
        if r is not None:
            m["rss.rps"] = r["requests"] / (r["duration_us"] / 1e6 or 1.0)
            m["rss.p99_ms"] = r["p99_us"] / 1000.0
            m["rss.errors"] = sum(v for k, v in r.items() if k.startswith("err_"))
    except (OSError, ValueError, KeyError):
        pass
    try:
        with open(os.path.join(rdir, "iperf3.out")) as f:
            d = json.load(f)
        m["iperf3.bytes"] = d["end"]["sum_received"]["bytes"]
        m["iperf3.gbps"] = d["end"]["sum_received"]["bits_per_second"] / 1e9
        m["iperf3.retransmits"] = d["end"].get("sum_sent", {}).get("retransmits", 0)
        cpu = cpu_delta(rdir, "iperf3") or {}
        if cpu.get("wall_s"):
            m["iperf3.node_cores"] = cpu["busy_s"] / cpu["wall_s"]
            m["iperf3.mesh_cores"] = cpu["mesh_s"] / cpu["wall_s"]
            m["iperf3.elsewhere_cores"] = cpu["elsewhere_cores"]
    except (OSError, ValueError, KeyError):
        pass
    return m


def rounds_of(sdir):
    if not os.path.isdir(sdir):
        return []
    names = [d for d in os.listdir(sdir) if re.fullmatch(r"r\d+", d)]
    return [os.path.join(sdir, d) for d in sorted(names, key=lambda d: int(d[1:]))]


def scenario(top, s, tests, warn):
    res = {"desc": "", "target": "", "notes": [], "status": "ok", "reason": "", "rounds": {}}
    failed, unsupported = [], []
    for rd in rounds_of(os.path.join(top, s)):
        rn = os.path.basename(rd)
        res["desc"] = res["desc"] or read_text(os.path.join(rd, "desc"))
        res["target"] = res["target"] or read_text(os.path.join(rd, "target"))
        for n in read_text(os.path.join(rd, "notes")).splitlines():
            if n not in res["notes"]:
                res["notes"].append(n)
        if os.path.exists(os.path.join(rd, "UNSUPPORTED")):
            unsupported.append((rn, read_text(os.path.join(rd, "UNSUPPORTED"))))
        elif os.path.exists(os.path.join(rd, "FAILED")):
            failed.append((rn, read_text(os.path.join(rd, "FAILED"))))
        else:
            m = round_metrics(rd, tests)
            empty = [t for t in tests if not m.get(t + ".requests")]
            if not m.get("iperf3.bytes"):
                empty.append("iperf3")
            if empty:
                failed.append((rn, "no traffic in " + ", ".join(empty)))
            res["rounds"][rn] = m
    if failed:
        res["status"], res["reason"] = "failed", "; ".join("%s: %s" % f for f in failed)
    elif unsupported and not res["rounds"]:
        res["status"], res["reason"] = "unsupported", unsupported[0][1]
    elif not res["rounds"]:
        res["status"], res["reason"] = "failed", "not run"
    good = {rn: m for rn, m in res["rounds"].items() if rn not in dict(failed)}
    # A test still disturbed after its retry (something else used the CPUs) is left out of the
    # medians when another round of it is clean; when none is, it stays and is flagged.
    res["disturbed"] = []
    use = {}
    for t in tests + ["iperf3"]:
        bad = [rn for rn, m in good.items() if m.get(t + ".elsewhere_cores", 0.0) > warn]
        use[t] = [rn for rn in good if rn not in bad] or list(good)
        for rn in bad:
            res["disturbed"].append({"test": t, "round": rn, "excluded": rn not in use[t],
                                     "cores": good[rn][t + ".elsewhere_cores"]})
    res["median"], res["spread"] = {}, {}
    for k in sorted({k for m in good.values() for k in m}):
        vals = [good[rn][k] for rn in use.get(k.split(".")[0], list(good)) if k in good[rn]]
        if not vals:
            continue
        res["median"][k] = statistics.median(vals)
        if len(vals) > 1 and res["median"][k]:
            res["spread"][k] = (max(vals) - min(vals)) / res["median"][k]
    return res


def fmt(v, spec="{:.0f}"):
    return "-" if v is None else spec.format(v)


def table(headers, rows):
    out = ["| " + " | ".join(headers) + " |",
           "|" + "|".join("---:" if i else "---" for i in range(len(headers))) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def main():
    top = sys.argv[1]
    order = read_text(os.path.join(top, "order")).split()
    meta = {}
    for line in read_text(os.path.join(top, "meta.txt")).splitlines():
        if "=" in line and ":" not in line.split("=")[0]:
            k, v = line.split("=", 1)
            meta[k] = v
    smoke = meta.get("SMOKE") == "1"
    conns = [int(c) for c in meta.get("CONNS", "16 64").split()]
    tests = ["rr%d" % c for c in conns] + ["conn"]
    warn = float(meta.get("DISTURBED_CORES", "0.15"))
    res = {s: scenario(top, s, tests, warn) for s in order}

    def v(s, k):
        return res.get(s, {}).get("median", {}).get(k)

    def ratio(s, k, base="direct"):
        a, b = v(s, k), v(base, k)
        return None if a is None or not b else a / b

    def rfmt(s, k, base="direct"):
        return fmt(ratio(s, k, base), "{:.2f}")

    def label(s):
        st = res[s]["status"]
        return s if st == "ok" else "%s (%s)" % (s, st.upper())

    out = []
    w = out.append
    nrounds = max((len(r["rounds"]) for r in res.values()), default=0)
    w("# bpfmesh bench, %s\n" % os.path.basename(os.path.normpath(top)))
    if smoke:
        w("**Smoke run**: about one second per measurement, to check that every scenario "
          "carries traffic. These figures are not a benchmark.\n")
    for line in read_text(os.path.join(top, "meta.txt")).splitlines():
        if ":" in line.split("=")[0]:
            w("- " + line)
    w("- settings: " + ", ".join("%s=%s" % kv for kv in meta.items() if kv[0] not in ("SCENARIOS", "SMOKE")))
    w("- %s\n" % ("median of %d rounds, interleaved" % nrounds if nrounds > 1 else "one round"))

    w("## Ratios to direct\n")
    w("Each figure divided by `direct`'s. rps, new conn/s and iperf3: higher is better; "
      "latency and CPU per request: lower is better.\n")
    rows = []
    for s in order:
        if res[s]["status"] != "ok" and not res[s]["rounds"]:
            rows.append([label(s)] + ["-"] * (3 * len(conns) + 3))
            continue
        row = [label(s)]
        row += [rfmt(s, "rr%d.rps" % c) for c in conns]
        row += [rfmt(s, "rr%d.p50_ms" % c) for c in conns]
        row += [rfmt(s, "rr%d.p99_ms" % c) for c in conns]
        row += [rfmt(s, "conn.rps"), rfmt(s, "iperf3.gbps"), rfmt(s, "rr%d.node_cpu_us" % conns[0])]
        rows.append(row)
    w(table(["scenario"] + ["rps %dc" % c for c in conns] + ["p50 %dc" % c for c in conns]
            + ["p99 %dc" % c for c in conns] + ["new conn/s", "iperf3", "CPU/req %dc" % conns[0]],
            rows))

    w("\n## Goals\n")
    w("Issue 4 (the L4 scenarios) and the bpfmesh-l7 issue. A goal is a ratio to another "
      "scenario of this run (`× direct`, `× %s`) or an absolute figure; `figures` gives the "
      "scenario's median and the baseline's. Goals, not assertions: a miss does not fail the "
      "run.\n" % L7_BASE)
    rows = []
    for s, k, what, op, goal, base in GOALS:
        if s not in res:
            continue
        what = what.format(rss_conns=meta.get("RSS_CONNS", "1000"))
        spec, unit = UNITS.get(k.split(".", 1)[1], ("{:.2f}", ""))
        sym = op.replace(">=", "≥").replace("<=", "≤")
        if base:
            r = ratio(s, k, base)
            against, goal_s, meas = "× " + base, "%s %.2f" % (sym, goal), fmt(r, "{:.2f}")
            figs = "%s / %s %s" % (fmt(v(s, k), spec), fmt(v(base, k), spec), unit)
        else:
            r = v(s, k)
            against, goal_s = "absolute", "%s %s %s" % (sym, spec.format(goal), unit)
            meas, figs = fmt(r, spec) + (" " + unit if r is not None else ""), ""
        if res[s]["status"] == "unsupported":
            verdict = "unsupported"
        elif base and base not in res:
            verdict = "not measured (no %s in this run)" % base
        elif base and res[base]["status"] != "ok":
            verdict = "not measured (%s %s)" % (base, res[base]["status"])
        elif r is None:
            verdict = "not measured"
        else:
            verdict = "met" if (r >= goal if op == ">=" else r <= goal) else "**missed**"
        rows.append([s, what, against, goal_s, meas, figs, verdict])
    if rows:
        w(table(["scenario", "metric", "against", "goal", "measured", "figures", ""], rows))
    else:
        w("(no scenario with goals in this run)")

    w("\n## Request/response, keepalive\n")
    w("`wrk -t%s -cN -d%ss --latency`, GET of a 100-byte body. CPU per request: node = all busy "
      "CPU of the machine (/proc/stat: apps, kernel, softirq, eBPF), mesh = the mesh's own "
      "processes (cgroup cpu.stat of the proxies or the agent). Busy elsewhere: cores busy "
      "outside the bench's cgroups during the test (kernel threads, other processes; ~0 on a "
      "quiet machine).\n" % (meta.get("THREADS", "2"), meta.get("DURATION", "10")))
    rows = []
    for s in order:
        for c in conns:
            t = "rr%d." % c
            if v(s, t + "rps") is None:
                rows.append([label(s), c] + ["-"] * 12)
                continue
            sp = res[s]["spread"].get(t + "rps")
            rows.append([label(s), c, fmt(v(s, t + "rps")), rfmt(s, t + "rps"),
                         fmt(v(s, t + "p50_ms"), "{:.3f}"), rfmt(s, t + "p50_ms"),
                         fmt(v(s, t + "p99_ms"), "{:.3f}"), rfmt(s, t + "p99_ms"),
                         fmt(v(s, t + "node_cpu_us"), "{:.1f}"), rfmt(s, t + "node_cpu_us"),
                         fmt(v(s, t + "mesh_cpu_us"), "{:.1f}"),
                         fmt(v(s, t + "elsewhere_cores"), "{:.2f}"), fmt(v(s, t + "errors")),
                         "-" if sp is None else "{:.0f}%".format(100 * sp)])
    w(table(["scenario", "conns", "rps", "× direct", "p50 ms", "× direct", "p99 ms", "× direct",
             "node CPU µs/req", "× direct", "mesh CPU µs/req", "busy elsewhere", "errors",
             "rps spread"], rows))

    l7 = [s for s in order if s.endswith("-l7")]
    if l7:
        base = L7_BASE
        w("\n## L7: HTTP routing beside %s\n" % base)
        w("The HTTP scenarios (and direct, the ceiling) against `%s`, the Istio-like sidecar "
          "model with HTTP proxies on both sides. `× %s`: the figure divided by %s's; for rps "
          "higher is better, for latency and CPU per request lower is better. The `close` row is "
          "the new-connection test (one request per connection: rps is new conn/s, CPU is per "
          "connection).%s\n" % (base, base, base, "" if base in res else
                                  " **%s is not in this run: no ratios.**" % base))
        rows = []
        for s in ["direct"] * ("direct" in res) + [x for x in l7 if x == base] + [x for x in l7 if x != base]:
            for t, cl in [("rr%d." % c, str(c)) for c in conns] + [("conn.", "%s close" % meta.get("CONN_CONNS", "16"))]:
                if v(s, t + "rps") is None:
                    rows.append([label(s), cl] + ["-"] * 11)
                    continue
                rows.append([label(s), cl, fmt(v(s, t + "rps")), rfmt(s, t + "rps", base),
                             rfmt(s, t + "rps"),
                             fmt(v(s, t + "p50_ms"), "{:.3f}"), fmt(v(s, t + "p99_ms"), "{:.3f}"),
                             rfmt(s, t + "p99_ms", base),
                             fmt(v(s, t + "node_cpu_us"), "{:.1f}"), rfmt(s, t + "node_cpu_us", base),
                             rfmt(s, t + "node_cpu_us"),
                             fmt(v(s, t + "mesh_cpu_us"), "{:.1f}"), rfmt(s, t + "mesh_cpu_us", base)])
        w(table(["scenario", "conns", "rps", "× " + base, "× direct", "p50 ms", "p99 ms",
                 "× " + base, "node CPU µs/req", "× " + base, "× direct", "mesh CPU µs/req",
                 "× " + base], rows))
        rss = [s for s in order if v(s, "rss.vmhwm_mib") is not None]
        if rss:
            w("\n**The agent's memory under %s concurrent connections**: `wrk -c%s` held them open "
              "through the VIP for %s s (every connection busy: a request in flight on each, so "
              "up to as many upstream connections); `/proc/<agent>/status` sampled every 0.2 s. "
              "VmHWM: the agent's peak RSS since it started, read while every connection was "
              "open; VmRSS: the highest sample then.\n" % (
                  meta.get("RSS_CONNS", "1000"), meta.get("RSS_CONNS", "1000"), meta.get("RSS_DURATION", "5")))
            w(table(["scenario", "conns open (max)", "VmHWM MiB", "VmRSS MiB", "upstream conns (max)",
                     "agent fds (max)", "rps", "p99 ms", "errors"],
                    [[label(s), fmt(v(s, "rss.conns_max")), fmt(v(s, "rss.vmhwm_mib"), "{:.1f}"),
                      fmt(v(s, "rss.vmrss_mib"), "{:.1f}"), fmt(v(s, "rss.upstream_max")),
                      fmt(v(s, "rss.fds_max")), fmt(v(s, "rss.rps")), fmt(v(s, "rss.p99_ms"), "{:.1f}"),
                      fmt(v(s, "rss.errors"))] for s in rss]))

    w("\n## New connections and throughput\n")
    w("New connections: `wrk -c%s -d%ss -H 'Connection: close'` (one request per connection). "
      "iperf3: one TCP stream, %ss after %ss omitted.\n" % (
          meta.get("CONN_CONNS", "16"), meta.get("CONN_DURATION", "8"),
          meta.get("IPERF_DURATION", "5"), meta.get("IPERF_OMIT", "1")))
    rows = []
    for s in order:
        if v(s, "conn.rps") is None and v(s, "iperf3.gbps") is None:
            rows.append([label(s)] + ["-"] * 11)
            continue
        rows.append([label(s), fmt(v(s, "conn.rps")), rfmt(s, "conn.rps"),
                     fmt(v(s, "conn.p99_ms"), "{:.3f}"),
                     fmt(v(s, "conn.node_cpu_us"), "{:.1f}"), rfmt(s, "conn.node_cpu_us"),
                     fmt(v(s, "conn.mesh_cpu_us"), "{:.1f}"),
                     fmt(v(s, "conn.elsewhere_cores"), "{:.2f}"),
                     fmt(v(s, "iperf3.gbps"), "{:.2f}"), rfmt(s, "iperf3.gbps"),
                     fmt(v(s, "iperf3.retransmits")), fmt(v(s, "conn.errors"))])
    w(table(["scenario", "new conn/s", "× direct", "p99 ms", "node CPU µs/conn", "× direct",
             "mesh CPU µs/conn", "busy elsewhere", "iperf3 Gbit/s", "× direct", "retransmits",
             "errors"], rows))

    # The loads leave next to nothing outside the run's cgroups on a quiet machine: more than
    # that means something else competed for the CPUs during the measurement.
    def disturbed(excluded):
        return ["%s %s%s (%.2f cores)" % (s, d["test"], " " + d["round"] if nrounds > 1 else "", d["cores"])
                for s in order for d in res[s]["disturbed"] if d["excluded"] == excluded]
    if disturbed(False):
        w("\n**Disturbed measurements**: CPU was busy outside the bench during " + ", ".join(disturbed(False))
          + ". Something else ran on the machine, so those figures understate the scenario; "
          "run again on a quiet machine.")
    if disturbed(True):
        w("\nLeft out of the medians (disturbed, and another round is clean): " + ", ".join(disturbed(True)) + ".")

    w("\n## Scenarios\n")
    for s in order:
        r = res[s]
        line = "- **%s** (target %s): %s" % (s, r["target"] or "?", r["desc"] or "")
        if r["status"] != "ok":
            line += " — **%s**: %s" % (r["status"].upper(), r["reason"])
        for n in r["notes"]:
            line += " — note: " + n
        w(line)

    w("\n## Commands\n")
    w("Run: `%s`. Each measurement runs in the client pod's netns and cgroup as below "
      "(TARGET: the pod IP for direct, the VIP otherwise); the scenario's setup (proxy configs, "
      "agent command and manifest) is in `<scenario>/r<N>/conf/`, raw outputs beside the "
      "commands.\n" % read_text(os.path.join(top, "meta.txt")).split("command: ")[-1].splitlines()[0])
    shown = False
    for s in order:
        for rd in rounds_of(os.path.join(top, s)):
            cmds = [(t, read_text(os.path.join(rd, t + ".cmd"))) for t in ["warmup"] + tests + ["iperf3"]]
            cmds = [(t, c) for t, c in cmds if c]
            if len(cmds) < len(tests) + 1:
                continue
            tgt = read_text(os.path.join(rd, "target"))
            w("```sh")
            for t, c in cmds:
                for line in c.splitlines():
                    if not line.startswith("#"):
                        w("%-7s %s" % (t + ":", line.replace(tgt, "$TARGET")))
            w("```")
            w("(%s, for %s; the cgroup of each scenario's client is in its `*.cmd` files)"
              % (cmds[0][1].splitlines()[0].lstrip("# "), s))
            shown = True
            break
        if shown:
            break
    for s in order:
        rd = os.path.join(top, s, "r1", "conf", "bpfmesh-agent.cmd")
        if os.path.exists(rd):
            w("\n%s agent: `%s`" % (s, read_text(rd)))

    with open(os.path.join(top, "table.md"), "w") as f:
        f.write("\n".join(out) + "\n")
    with open(os.path.join(top, "summary.json"), "w") as f:
        json.dump(res, f, indent=1, sort_keys=True)
    # chart.dat for lib/chart.gp; none when no scenario has a figure to draw.
    chart = os.path.join(top, "chart.dat")
    if any(v(s, "rr%d.rps" % c) is not None for s in order for c in conns):
        with open(chart, "w") as f:
            f.write("# scenario, rps per conns, then p50 and p99 ms per conns (%s)\n" % " ".join(map(str, conns)))
            for s in order:
                cols = ['"%s"' % label(s).replace(" (", "\\n(")]
                cols += [fmt(v(s, "rr%d.rps" % c), "{:.0f}") for c in conns]
                for c in conns:
                    cols += [fmt(v(s, "rr%d.p50_ms" % c), "{:.3f}"), fmt(v(s, "rr%d.p99_ms" % c), "{:.3f}")]
                f.write(" ".join(cols) + "\n")
    elif os.path.exists(chart):
        os.remove(chart)
    bad = 0
    with open(os.path.join(top, "status.txt"), "w") as f:
        for s in order:
            f.write("%s %s %s\n" % (s, res[s]["status"], res[s]["reason"]))
            bad |= res[s]["status"] == "failed"
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
