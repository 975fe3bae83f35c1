# SPDX-License-Identifier: Apache-2.0
# alerts_check.py METRICS RULES DASHBOARD: the shipped Prometheus rules (etc/prometheus/
# ocra.rules.yml) and Grafana dashboard (etc/grafana/ocra.json) are well formed and every
# metric family their expressions name is one that METRICS (a /metrics scrape of the daemon)
# exports, so neither goes stale when a metric is renamed. Prints problems, exits 1 on any.
import json
import re
import sys

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import promcheck  # noqa: E402

try:
    import yaml
except ImportError:
    print("python3-yaml is needed (scripts/install-deps test installs it)")
    sys.exit(1)

metrics, rules_path, dash_path = sys.argv[1:4]
problems, fams = promcheck.check(open(metrics).read())
exported = set(fams)
for f, d in fams.items():  # a histogram's series names
    if d.get("type") == "histogram":
        exported |= {f + "_bucket", f + "_sum", f + "_count"}
bad = list(problems[:3])
# what PromQL words are not metric names
words = {"sum", "by", "rate", "increase", "histogram_quantile", "or", "and", "le", "without",
         "on", "ignoring", "max", "min", "avg", "count", "humanizePercentage"}


def names(expr):
    expr = re.sub(r'\{[^}]*\}', '', expr)       # label matchers
    expr = re.sub(r'\[[^\]]*\]', '', expr)      # ranges
    expr = re.sub(r'by \([^)]*\)', '', expr)    # grouping labels
    return {w for w in re.findall(r'[a-zA-Z_:][a-zA-Z0-9_:]*', expr) if w not in words}


def check_expr(where, expr):
    for n in names(expr):
        if n not in exported:
            bad.append(f"{where}: {n} is not exported by /metrics")


rules = yaml.safe_load(open(rules_path))
alerts = [r for g in rules["groups"] for r in g["rules"]]
if len(alerts) < 10:
    bad.append(f"{rules_path}: {len(alerts)} rules")
for r in alerts:
    for key in ("alert", "expr", "labels", "annotations"):
        if key not in r:
            bad.append(f"{rules_path}: {r.get('alert')}: no {key}")
    if "severity" not in r.get("labels", {}) or "summary" not in r.get("annotations", {}):
        bad.append(f"{rules_path}: {r.get('alert')}: wants labels.severity and annotations.summary")
    check_expr(f"{rules_path}: {r.get('alert')}", str(r.get("expr", "")))
dash = json.load(open(dash_path))
targets = [(p["title"], t["expr"]) for p in dash["panels"] for t in p.get("targets", [])]
if len(targets) < 10:
    bad.append(f"{dash_path}: {len(targets)} panel expressions")
for title, expr in targets:
    check_expr(f"{dash_path}: {title}", expr)
for p in bad:
    print(p)
sys.exit(1 if bad else 0)
