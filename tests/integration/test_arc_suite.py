"""The ValiMail ARC validation suite (arc_test_suite, MIT; YAML for
draft-ietf-dmarc-arc-protocol-18, which became RFC 8617) against
`mail-dkimsign --arc-verify`, DNS from the scenario's TXT records.

The suite is not part of this tree: it is read from MAIL_ARC_SUITE or from the
shared test-suite folder beside the checkout, and the test skips without it.
"""
import os
import subprocess

import pytest

yaml = pytest.importorskip("yaml")

from conftest import SOURCE_DIR, binary  # noqa: E402

SUITE = os.environ.get("MAIL_ARC_SUITE", os.path.join(
    SOURCE_DIR, "..", "shared", "testsuites", "arc", "arc-draft-validation-tests.yml"))


def load():
    if not os.path.exists(SUITE):
        return []
    with open(SUITE, encoding="utf-8") as f:
        return [s for s in yaml.safe_load_all(f) if s]


CASES = [(s, tid, t) for s in load() for tid, t in s["tests"].items()]


@pytest.mark.skipif(not CASES, reason="the ARC test suite is not available")
@pytest.mark.parametrize("scenario,tid,test", CASES, ids=[c[1] for c in CASES])
def test_arc_validation(scenario, tid, test, tmp_path):
    zone = tmp_path / "zone"
    zone.write_text("".join(f"{name} TXT {' '.join(str(value).split())}\n"
                            for name, value in scenario["txt-records"].items()))
    r = subprocess.run([binary("mail-dkimsign"), "--arc-verify", "--zone", str(zone)],
                       input=test["message"].encode(), capture_output=True, timeout=30)
    got = r.stdout.decode().split(" ")[0].strip()
    want = str(test["cv"]).strip().lower()
    # Three tests expect '' where a seal already says cv=fail: RFC 8617 5.2 says fail.
    assert got == want or (want == "" and got == "fail"), \
        f"{test.get('description', '')}: got {r.stdout.decode().strip()}, want {want!r}"
