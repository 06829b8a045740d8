#!/usr/bin/env python3
"""Checks the shipped Grafana dashboard and Prometheus rules (issue 18).

  monitoring_check.py static DASHBOARD RULES WORKDIR
      The dashboard's structure (unique ids, grid, data source variable, every
      $variable defined) and every PromQL expression in it, which promtool parses
      (written into WORKDIR as recording rules: `promtool check rules`).
  monitoring_check.py names DASHBOARD RULES SCRAPE...
      Every hafront_*/keepalived_* series the dashboard and the rules use is a
      family the daemon exports (a `# TYPE` line in one of the scrapes).
  monitoring_check.py promtool-test RULES OUT PHASE1_A PHASE1_B PHASE2_A PHASE2_B
      Writes a `promtool test rules` file whose input series are the real scrapes
      of nodes a and b (phase 1: a healthy pair, 1 min; phase 2: VRRP cut both ways,
      2 min) and which expects no pair alert in phase 1 and HafrontTwoMasters and
      HafrontSplitBrain in phase 2.
"""
import json
import re
import subprocess
import sys

NAME = re.compile(r"\b((?:hafront|keepalived)_[a-z0-9_]+)")
VARS = {"$__rate_interval": "1m", "$__range": "1h", "$__interval": "30s",
        "$job": "hafront", "$node": ".*"}


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def dashboard_exprs(dash):
    out = []
    for p in dash["panels"]:
        for t in p.get("targets", []):
            out.append((f"panel {p['id']} '{p['title']}' {t['refId']}", t["expr"]))
    for a in dash.get("annotations", {}).get("list", []):
        if "expr" in a:
            out.append((f"annotation '{a['name']}'", a["expr"]))
    return out


def rule_exprs(path):
    text = open(path).read()
    return re.findall(r"^\s+expr: (.+)$", text, re.M)


def static(dash_path, rules_path, workdir):
    dash = json.load(open(dash_path))
    ids = [p["id"] for p in dash["panels"]]
    if len(ids) != len(set(ids)):
        fail(f"panel ids repeat: {ids}")
    defined = {v["name"] for v in dash["templating"]["list"]}
    cells = set()
    for p in dash["panels"]:
        g = p["gridPos"]
        if g["x"] < 0 or g["x"] + g["w"] > 24:
            fail(f"panel {p['id']} '{p['title']}' is outside the 24-column grid: {g}")
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                if (x, y) in cells:
                    fail(f"panel {p['id']} '{p['title']}' overlaps another at {x},{y}")
                cells.add((x, y))
        if p["type"] == "row":
            continue
        if not p.get("targets"):
            fail(f"panel {p['id']} '{p['title']}' has no query")
        if p.get("datasource", {}).get("uid") != "${datasource}":
            fail(f"panel {p['id']} '{p['title']}' does not use the $datasource variable")
    exprs = dashboard_exprs(dash)
    for where, e in exprs:
        for var in re.findall(r"\$[a-z_]+", e):
            if var not in VARS or (not var.startswith("$__") and var[1:] not in defined):
                fail(f"{where}: variable {var} is not defined")
    # promtool parses PromQL only in rule files: each expression becomes a
    # recording rule, with Grafana's variables replaced by typical values.
    lines = ["groups:", "  - name: dashboard", "    rules:"]
    for i, (_, e) in enumerate(exprs):
        for k, v in VARS.items():
            e = e.replace(k, v)
        lines.append(f"      - record: dashboard:expr_{i}")
        lines.append(f"        expr: {json.dumps(e)}")
    path = f"{workdir}/dashboard-exprs.rules.yml"
    open(path, "w").write("\n".join(lines) + "\n")
    r = subprocess.run(["promtool", "check", "rules", path], capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"promtool rejects a dashboard expression:\n{r.stdout}{r.stderr}")
    r = subprocess.run(["promtool", "check", "rules", rules_path], capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"promtool check rules {rules_path}:\n{r.stdout}{r.stderr}")
    print(f"ok: {len(ids)} panels, {len(exprs)} dashboard expressions parse; rules check")


def names(dash_path, rules_path, scrapes):
    used = set()
    for _, e in dashboard_exprs(json.load(open(dash_path))):
        used |= set(NAME.findall(e))
    for e in rule_exprs(rules_path):
        used |= set(NAME.findall(e))
    exported = set()
    for s in scrapes:
        exported |= set(re.findall(r"^# TYPE (\S+) ", open(s).read(), re.M))
    missing = []
    for n in sorted(used):
        base = re.sub(r"_(bucket|sum|count)$", "", n)
        if n not in exported and base not in exported:
            missing.append(n)
    if missing:
        fail(f"used but not exported by hafront: {missing}")
    print(f"ok: all {len(used)} series names used are exported")


def series(scrape, node):
    """(selector, value) of every sample of hafront_*/keepalived_* in a scrape."""
    from prometheus_client.parser import text_string_to_metric_families
    out = {}
    for fam in text_string_to_metric_families(open(scrape).read()):
        for s in fam.samples:
            if not NAME.fullmatch(s.name):
                continue
            labels = dict(s.labels, job="hafront", instance=node)
            sel = s.name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
            out[sel] = s.value
    return out


def promtool_test(rules_path, out, p1a, p1b, p2a, p2b):
    phase1 = {**series(p1a, "a"), **series(p1b, "b")}
    phase2 = {**series(p2a, "a"), **series(p2b, "b")}
    # 10 s steps: phase 1 for 60 s (6 samples), phase 2 for 120 s (12 samples).
    inputs = []
    for sel in sorted(set(phase1) | set(phase2)):
        v1 = f"{phase1[sel]:g}x5" if sel in phase1 else "_x5"
        v2 = f"{phase2[sel]:g}x11" if sel in phase2 else "_x11"
        inputs.append({"series": sel, "values": f"{v1} {v2}"})
    two = {"exp_labels": {"severity": "critical", "vrid": "51"},
           "exp_annotations": {
               "summary": "2 nodes are master of VRID 51",
               "description": "More than one node reports MASTER for the same VRID: a partition of the VRRP path, or a VRID shared by mistake."}}
    split = [{"exp_labels": {"severity": "critical", "job": "hafront", "instance": n, "vrrp_instance": "web"},
              "exp_annotations": {
                  "summary": f"Split brain on {n}, VRRP instance web",
                  "description": "hafront sees another master for the VIPs of web (in-band adverts or the ARP/NDP probe). Clients may reach either node."}}
             for n in ("a", "b")]
    tests = [{"interval": "10s", "input_series": inputs, "alert_rule_test": [
        {"eval_time": "50s", "alertname": "HafrontTwoMasters", "exp_alerts": []},
        {"eval_time": "50s", "alertname": "HafrontNoMaster", "exp_alerts": []},
        {"eval_time": "50s", "alertname": "HafrontSplitBrain", "exp_alerts": []},
        {"eval_time": "50s", "alertname": "HafrontReloadFailed", "exp_alerts": []},
        {"eval_time": "50s", "alertname": "HafrontTrackingFault", "exp_alerts": []},
        {"eval_time": "150s", "alertname": "HafrontTwoMasters", "exp_alerts": [two]},
        {"eval_time": "150s", "alertname": "HafrontNoMaster", "exp_alerts": []},
        {"eval_time": "150s", "alertname": "HafrontSplitBrain", "exp_alerts": split},
    ]}]
    doc = {"rule_files": [rules_path], "evaluation_interval": "10s", "tests": tests}
    # JSON is YAML: promtool reads it as is.
    json.dump(doc, open(out, "w"), indent=1)
    print(f"ok: {len(inputs)} series from the scrapes in {out}")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "static":
        static(*args)
    elif cmd == "names":
        names(args[0], args[1], args[2:])
    elif cmd == "promtool-test":
        promtool_test(*args)
    else:
        fail(f"unknown command {cmd}")
