"""The RFC 7208 SPF test suite (openspf.org, release 2014.04, shipped gzipped by
Debian's python3-spf) against our evaluator, through `mail-dkimsign --spf-check`
with the scenario's zone data as a zone file: no network.

The zone is built the way the suite's own harness (testspf.py) serves it: SPF
records are also served as TXT when a name has no TXT ("TXT: NONE" stops that),
a bare TIMEOUT fails the lookups of every type not listed before it, a CNAME is
followed one level, and names under "error." time out.
"""
import gzip
import os
import subprocess

import pytest

yaml = pytest.importorskip("yaml")

from conftest import binary  # noqa: E402

SUITE = "/usr/share/doc/python3-spf/rfc7208-tests.yml.gz"
TYPES = ("TXT", "A", "AAAA", "MX", "PTR")


def load_suite():
    if not os.path.exists(SUITE):
        return []
    with gzip.open(SUITE, "rt", encoding="utf-8") as f:
        return [s for s in yaml.safe_load_all(f) if s]


def entries(records, name):
    """The harness's view of one name: (type, value) pairs and "TIMEOUT" markers."""
    out, generated, has_txt = [], [], False
    for r in records:
        if r == "TIMEOUT":
            out.append("TIMEOUT")
            continue
        for t, v in r.items():
            if t in ("TXT", "SPF"):
                v = "".join(v) if isinstance(v, list) else str(v)
            elif t == "MX":
                v = f"{v[0]} {v[1]}"
            else:
                v = str(v)
            if t == "TXT":
                has_txt = True
            elif t == "SPF":
                generated.append(("TXT", v))
            if v != "NONE":
                out.append((t, v))
    if not has_txt:
        out.extend(generated)
    return out


def answer(zone, name, qtype, level=0):
    """The records of qtype at name, "TIMEOUT", or None for NXDOMAIN."""
    key = name.lower().rstrip(".")
    if key not in zone:
        return "TIMEOUT" if key.startswith("error.") else None
    timeout, out = True, []
    for e in zone[key]:
        if e == "TIMEOUT":
            if timeout:
                return "TIMEOUT"
            return out
        t, v = e
        if t == qtype:
            timeout = False
        if v == "TIMEOUT":
            if t == qtype:
                return "TIMEOUT"
            continue
        if t == qtype:
            out.append(v)
        if level == 0 and t == "CNAME":
            sub = answer(zone, v, qtype, 1)
            if sub == "TIMEOUT":
                return sub
            out.extend(sub or [])
    return out


def esc(text, keep_spaces=False):
    """The zone file's escapes: a backslash doubled, \\xHH for bytes that would break a line."""
    special = "\r\n" if keep_spaces else " \t\r\n"
    return "".join("\\\\" if ch == "\\" else "\\x%02x" % ord(ch) if ch in special else ch for ch in text)


def zone_file(scenario):
    zone = {name.lower().rstrip("."): entries(recs, name) for name, recs in scenario["zonedata"].items()}
    lines = ["error.* TIMEOUT"]
    for name in zone:
        lines.append(f"{esc(name)} EXISTS")
        for qtype in TYPES:
            a = answer(zone, name, qtype)
            if a == "TIMEOUT":
                lines.append(f"{esc(name)} TIMEOUT {qtype}")
            else:
                for v in a or []:
                    lines.append(f"{esc(name)} {qtype} {esc(v, keep_spaces=True)}")
    return "\n".join(lines) + "\n"


CASES = [(s, name, t) for s in load_suite() for name, t in sorted(s["tests"].items())]


@pytest.mark.skipif(not CASES, reason="python3-spf's rfc7208-tests.yml.gz is not installed")
@pytest.mark.parametrize("scenario,name,test", CASES, ids=[c[1] for c in CASES])
def test_rfc7208(scenario, name, test, tmp_path):
    zone = tmp_path / "zone"
    zone.write_text(zone_file(scenario))
    line = f"{test['host']}\t{test.get('mailfrom', '')}\t{test.get('helo', '')}\n"
    r = subprocess.run([binary("mail-dkimsign"), "--spf-check", "--zone", str(zone),
                        "--spf-explanation", "DEFAULT"], input=line.encode(), capture_output=True, timeout=30)
    assert r.returncode in (0, 1), r.stderr
    got = r.stdout.decode().rstrip("\n").split("\t")
    want = test["result"] if isinstance(test["result"], list) else [test["result"]]
    assert got[0] in want, f"{test.get('description', '')} spec {test.get('spec')}: got {got}, want {want}"
    if "explanation" in test and got[0] == "fail":
        assert len(got) > 1 and got[1] == test["explanation"], got
