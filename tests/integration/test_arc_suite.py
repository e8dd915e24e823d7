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

from conftest import TESTSUITES, binary  # noqa: E402

SUITE = os.environ.get("MAIL_ARC_SUITE", os.path.join(TESTSUITES, "arc", "arc-draft-validation-tests.yml"))


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


SIGN_SUITE = os.path.join(os.path.dirname(SUITE), "arc-draft-sign-tests.yml")


def load_sign():
    if not os.path.exists(SIGN_SUITE):
        return []
    with open(SIGN_SUITE, encoding="utf-8") as f:
        return [s for s in yaml.safe_load_all(f) if s]


SIGN_CASES = [(s, tid, t) for s in load_sign() for tid, t in s["tests"].items()]


def tagset(value):
    """The suite's comparison: whitespace removed, tag=value pairs as a set."""
    return set("".join(value.split()).split(";"))


def added_fields(out, msg):
    """The ARC header fields mail-dkimsign put in front of the message, unfolded."""
    assert out.endswith(msg)
    fields, name = {}, None
    for line in out[:len(out) - len(msg)].splitlines():
        if line[:1] in (" ", "\t") and name:
            fields[name] += line
        elif ":" in line:
            name, value = line.split(":", 1)
            name = name.strip().lower()
            fields[name] = value
    return fields


@pytest.mark.skipif(not SIGN_CASES, reason="the ARC test suite is not available")
@pytest.mark.parametrize("scenario,tid,test", SIGN_CASES, ids=[c[1] for c in SIGN_CASES])
def test_arc_signing(scenario, tid, test, tmp_path):
    key = tmp_path / "key.pem"
    key.write_text(scenario["privatekey"])
    r = subprocess.run([binary("mail-dkimsign"), "--arc-seal", "--domain", scenario["domain"],
                        "--selector", scenario["sel"], "--key", str(key), "--authserv-id", test["srv-id"],
                        "--headers", test["sig-headers"], "--timestamp", str(test["t"])],
                       input=test["message"].encode(), capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    fields = added_fields(r.stdout.decode(), test["message"])
    want = {"arc-seal": test["AS"], "arc-message-signature": test["AMS"], "arc-authentication-results": test["AAR"]}
    if all(str(v).strip() == "" for v in want.values()):
        assert fields == {}
        return
    for name, value in want.items():
        assert name in fields, f"{test.get('description', '')}: no {name}"
        assert tagset(fields[name]) == tagset(value), f"{test.get('description', '')}: {name}"


@pytest.mark.skipif(not SIGN_CASES, reason="the ARC test suite is not available")
def test_our_seals_validate(tmp_path):
    """Sealed twice by us, a message validates with us and with dkimpy."""
    scenario, _, test = next(c for c in SIGN_CASES if c[1] == "i0_base")
    key = tmp_path / "key.pem"
    key.write_text(scenario["privatekey"])
    zone = tmp_path / "zone"
    zone.write_text("".join(f"{n} TXT {' '.join(str(v).split())}\n" for n, v in scenario["txt-records"].items()))

    def seal(msg):
        r = subprocess.run([binary("mail-dkimsign"), "--arc-seal", "-d", scenario["domain"], "-s", scenario["sel"],
                            "-k", str(key), "--authserv-id", "lists.example.org"], input=msg, capture_output=True)
        assert r.returncode == 0, r.stderr
        return r.stdout

    def validate(msg):
        r = subprocess.run([binary("mail-dkimsign"), "--arc-verify", "--zone", str(zone)], input=msg,
                           capture_output=True)
        return r.stdout.decode().split(" ")[0].strip()

    once = seal(test["message"].encode())
    assert validate(once) == "pass"
    twice = seal(b"Authentication-Results: lists.example.org; arc=pass\n" + once)
    assert validate(twice) == "pass"
    assert validate(twice.replace(b"This is a test message", b"This is a changed message")) == "fail"
    try:
        import dkim
    except ImportError:
        return
    recs = {k.lower(): " ".join(str(v).split()).encode() for k, v in scenario["txt-records"].items()}
    cv = dkim.arc_verify(twice, dnsfunc=lambda name, timeout=5: recs.get(name.decode().rstrip(".").lower()))[0]
    assert cv == b"pass"
