#!/usr/bin/python3
"""Parses a Prometheus text exposition with the official client library's parser
(python3-prometheus-client) and checks expectations given as arguments:

    metrics_check.py FILE 'NAME{label=value,...}=VALUE' 'NAME{...}>=VALUE' 'NAME{...}' ...

A bare `NAME{...}` asserts the series exists. Exits 1 naming the first failure.
Also prints a one-line summary (families, samples)."""
import re
import sys

from prometheus_client.parser import text_string_to_metric_families


def parse_expect(e):
    m = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?(?:(>=|=)(.*))?", e)
    if not m:
        sys.exit(f"bad expectation {e!r}")
    name, labels, op, value = m.groups()
    want = {}
    if labels:
        for part in labels.split(","):
            k, v = part.split("=", 1)
            want[k] = v
    return name, want, op, float(value) if value is not None else None


def main():
    text = open(sys.argv[1]).read()
    samples = []
    families = 0
    for fam in text_string_to_metric_families(text):
        families += 1
        samples.extend(fam.samples)
    print(f"parsed: {families} families, {len(samples)} samples")
    for e in sys.argv[2:]:
        name, want, op, value = parse_expect(e)
        hits = [s for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in want.items())]
        if not hits:
            print(f"FAIL: no series {e}")
            sys.exit(1)
        if op == "=" and not any(s.value == value for s in hits):
            print(f"FAIL: {e}: got {[s.value for s in hits]}")
            sys.exit(1)
        if op == ">=" and not any(s.value >= value for s in hits):
            print(f"FAIL: {e}: got {[s.value for s in hits]}")
            sys.exit(1)


if __name__ == "__main__":
    main()
