#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# promcheck.py [FILE]: a strict check of the Prometheus text exposition format 0.0.4 (stdin
# when no FILE). Every family has exactly one HELP and one TYPE before its samples, samples of a
# family are contiguous and named after it, names and labels are well formed, label values
# use only the format's escapes, values are numbers, counters end in _total, and every
# histogram series has cumulative _bucket lines ending at le="+Inf", a _sum and a _count equal
# to the +Inf bucket. Prints one line per problem and exits 1 when there is any.
import math
import re
import sys

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def parse_labels(s, where, problems):
    labels, i = [], 0
    while i < len(s):
        m = re.match(r"([a-zA-Z_][a-zA-Z0-9_]*)=\"", s[i:])
        if not m:
            problems.append(f"{where}: malformed labels at {s[i:]!r}")
            return None
        name, i, val = m.group(1), i + m.end(), ""
        while True:
            if i >= len(s):
                problems.append(f"{where}: unterminated label value")
                return None
            c = s[i]
            if c == "\\":
                if i + 1 >= len(s) or s[i + 1] not in '\\"n':
                    problems.append(f"{where}: bad escape in label value")
                    return None
                val += {"\\": "\\", '"': '"', "n": "\n"}[s[i + 1]]
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == "\n":
                problems.append(f"{where}: newline in label value")
                return None
            else:
                val += c
                i += 1
        labels.append((name, val))
        if i < len(s):
            if s[i] != ",":
                problems.append(f"{where}: expected , between labels")
                return None
            i += 1
    names = [n for n, _ in labels]
    if len(set(names)) != len(names):
        problems.append(f"{where}: duplicate label name")
    return labels


def value(s, where, problems):
    if s in ("+Inf", "-Inf", "NaN"):
        return float(s.replace("Inf", "inf").replace("NaN", "nan"))
    try:
        return float(s)
    except ValueError:
        problems.append(f"{where}: value {s!r} is not a number")
        return None


def check(text):
    problems, fams, order, current = [], {}, [], None
    if text and not text.endswith("\n"):
        problems.append("the exposition does not end with a newline")
    for n, line in enumerate(text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"), 1):
        where = f"line {n}"
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not NAME.match(name):
                    problems.append(f"{where}: bad metric name {name!r}")
                f = fams.setdefault(name, {"help": 0, "type": None, "samples": [], "closed": False})
                if f["samples"]:
                    problems.append(f"{where}: {parts[1]} of {name} after its samples")
                if name not in order:
                    if current and current in fams:
                        fams[current]["closed"] = True
                    order.append(name)
                current = name
                if parts[1] == "HELP":
                    f["help"] += 1
                else:
                    t = parts[3] if len(parts) > 3 else ""
                    if t not in TYPES:
                        problems.append(f"{where}: unknown type {t!r}")
                    if f["type"]:
                        problems.append(f"{where}: second TYPE for {name}")
                    f["type"] = t
            continue
        if not line.strip():
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?\d+)?\Z", line)
        if not m:
            problems.append(f"{where}: malformed sample {line!r}")
            continue
        sname, labels = m.group(1), parse_labels(m.group(3) or "", where, problems)
        v = value(m.group(4), where, problems)
        fam = None
        for cand in (sname, re.sub(r"_(bucket|sum|count)\Z", "", sname)):
            if cand in fams and (cand == sname or fams[cand]["type"] == "histogram"):
                fam = cand
                break
        if fam is None:
            problems.append(f"{where}: sample {sname} has no HELP/TYPE family")
            continue
        if fam != current or fams[fam]["closed"]:
            problems.append(f"{where}: samples of {fam} are not contiguous")
        if labels is not None and v is not None:
            fams[fam]["samples"].append((sname, labels, v, where))
    for name in order:
        f = fams[name]
        if f["help"] != 1:
            problems.append(f"{name}: {f['help']} HELP lines (want 1)")
        if not f["type"]:
            problems.append(f"{name}: no TYPE line")
        if f["type"] == "counter" and not name.endswith("_total"):
            problems.append(f"{name}: a counter's name should end in _total")
        seen = set()
        for sname, labels, v, where in f["samples"]:
            key = (sname, tuple(sorted(labels)))
            if key in seen:
                problems.append(f"{where}: duplicate series {sname}{labels}")
            seen.add(key)
            if f["type"] in ("counter", "gauge") and sname != name:
                problems.append(f"{where}: {sname} in {f['type']} family {name}")
            if f["type"] == "counter" and v < 0:
                problems.append(f"{where}: negative counter")
        if f["type"] == "histogram":
            series = {}
            for sname, labels, v, where in f["samples"]:
                le = [val for k, val in labels if k == "le"]
                rest = tuple(sorted((k, val) for k, val in labels if k != "le"))
                s = series.setdefault(rest, {"buckets": [], "sum": None, "count": None})
                if sname == name + "_bucket":
                    if len(le) != 1:
                        problems.append(f"{where}: a bucket needs one le label")
                        continue
                    s["buckets"].append((value(le[0], where, problems), v, where))
                elif sname == name + "_sum":
                    s["sum"] = v
                elif sname == name + "_count":
                    s["count"] = v
                else:
                    problems.append(f"{where}: {sname} in histogram {name}")
            for rest, s in series.items():
                b = s["buckets"]
                if not b:
                    problems.append(f"{name}{dict(rest)}: no buckets")
                    continue
                if not math.isinf(b[-1][0]):
                    problems.append(f"{name}{dict(rest)}: the last bucket is not le=\"+Inf\"")
                for (le0, c0, _), (le1, c1, w) in zip(b, b[1:]):
                    if le1 <= le0:
                        problems.append(f"{w}: le not increasing")
                    if c1 < c0:
                        problems.append(f"{w}: bucket counts not cumulative")
                if s["sum"] is None or s["count"] is None:
                    problems.append(f"{name}{dict(rest)}: missing _sum or _count")
                elif s["count"] != b[-1][1]:
                    problems.append(f"{name}{dict(rest)}: _count != the +Inf bucket")
    return problems, fams


if __name__ == "__main__":
    text = open(sys.argv[1]).read() if len(sys.argv) > 1 else sys.stdin.read()
    problems, fams = check(text)
    for p in problems:
        print("promcheck:", p)
    if not fams:
        print("promcheck: no metric families")
        sys.exit(1)
    sys.exit(1 if problems else 0)
