"""mail-dkimsign against dkimpy (Debian python3-dkim) in both directions.

Our signatures must verify with dkimpy and dkimpy's with us, over messages that
trip up canonicalization: folded and repeated headers, 8-bit headers, empty
bodies, trailing blank lines and whitespace, long lines, LF and CRLF input.
DNS is a file: dkimpy gets a dnsfunc, mail-dkimsign --key-record.
"""
import base64
import os
import subprocess

import pytest

dkim = pytest.importorskip("dkim")  # run under /usr/bin/python3 (Debian's python3-dkim)

from conftest import binary  # noqa: E402

DOMAIN = "example.org"
SELECTOR = "s1"
KEY_NAME = f"{SELECTOR}._domainkey.{DOMAIN}"

MESSAGES = {
    "plain": b"From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: hello\r\n"
             b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <1@example.org>\r\n\r\nHi Bob.\r\n",
    "folded_repeated": b"Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
                       b"Received: from c\r\n\tby d; Mon, 1 Jan 2024 00:00:01 +0000\r\n"
                       b"From: Alice <alice@example.org>\r\n"
                       b"To: bob@example.net,\r\n   carol@example.net,\r\n\t dave@example.net\r\n"
                       b"Cc: x@example.net\r\nCc: y@example.net\r\n"
                       b"Subject:   lots   of\t spaces  \r\n   and a fold\r\n"
                       b"Subject: second subject\r\n"
                       b"\r\nbody\r\n",
    "utf8_headers": "From: Jörg <jörg@example.org>\r\nTo: 田中 <tanaka@例え.jp>\r\n"
                    "Subject: =?UTF-8?Q?gr=C3=BC=C3=9Fe?= und grüße\r\n"
                    "Content-Type: text/plain; charset=utf-8\r\n"
                    "Content-Transfer-Encoding: 8bit\r\n\r\nGrüße aus Köln — ünïcødé\r\n".encode(),
    "empty_body": b"From: alice@example.org\r\nTo: bob@example.net\r\nSubject: empty\r\n\r\n",
    "no_separator": b"From: alice@example.org\r\nTo: bob@example.net\r\nSubject: no body at all\r\n",
    "trailing_blank_lines": b"From: alice@example.org\r\nSubject: t\r\n\r\nline  \t \r\n\r\n  \r\n\r\n\r\n",
    "trailing_whitespace": b"From: alice@example.org\r\nSubject: ws \t\r\n\r\n a  b\t\tc \r\n\t\r\nend \t\r\n",
    "no_final_newline": b"From: alice@example.org\r\nSubject: nl\r\n\r\nlast line without newline",
    "long_lines": b"From: alice@example.org\r\nSubject: " + b"long " * 200 + b"\r\n"
                  b"References: " + b" ".join(b"<%d@example.org>" % i for i in range(60)) + b"\r\n\r\n"
                  + b"x" * 5000 + b"\r\n" + (b"y" * 76 + b"\r\n") * 50,
    "lf_only": b"From: alice@example.org\nTo: bob@example.net\nSubject: lf\n  folded\n\nline one\n\nline  three \n\n",
    "mime": b"From: alice@example.org\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
            b"--b1\r\nContent-Type: text/plain\r\n\r\npart one\r\n--b1\r\n"
            b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + base64.encodebytes(os.urandom(300)).replace(b"\n", b"\r\n") + b"--b1--\r\n",
}

CANONS = ["relaxed/relaxed", "simple/simple", "relaxed/simple", "simple/relaxed"]


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """{'rsa': (keyfile, record), 'ed25519': (keyfile, record)}."""
    d = tmp_path_factory.mktemp("keys")
    rsa = d / "rsa.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                    "-out", str(rsa)], check=True, capture_output=True)
    ed = d / "ed25519.key"  # a base64 seed, the form dkimpy signs with
    ed.write_bytes(base64.b64encode(os.urandom(32)) + b"\n")
    out = {}
    for name, path in (("rsa", rsa), ("ed25519", ed)):
        rec = subprocess.run([binary("mail-dkimsign"), "--print-record", "--key", str(path)],
                             check=True, capture_output=True).stdout.decode().strip()
        rec_file = d / f"{name}.txt"
        rec_file.write_text(rec + "\n")
        out[name] = (path, rec, rec_file)
    return out


def our_sign(key, msg, canon):
    r = subprocess.run([binary("mail-dkimsign"), "--domain", DOMAIN, "--selector", SELECTOR,
                        "--key", str(key), "-c", canon], input=msg, capture_output=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith(msg)
    return r.stdout


def our_verify(rec_file, msg, *extra):
    r = subprocess.run([binary("mail-dkimsign"), "--verify", "--key-record", f"{KEY_NAME}={rec_file}",
                        *extra], input=msg, capture_output=True)
    return r.returncode, r.stdout.decode()


def dkimpy_sign(key, msg, canon, alg):
    c = tuple(x.encode() for x in canon.split("/"))
    sig = dkim.sign(msg, SELECTOR.encode(), DOMAIN.encode(), key.read_bytes(), canonicalize=c,
                    signature_algorithm=alg.encode())
    return sig + msg


def dkimpy_verify(rec, msg):
    def dnsfunc(name, timeout=5):
        return rec.encode() if name.decode().rstrip(".").lower() == KEY_NAME else None
    d = dkim.DKIM(msg)
    try:
        return d.verify(dnsfunc=dnsfunc)
    except dkim.DKIMException:
        return False


def tamper(msg):
    """Changes one body character (or adds a body when there is none)."""
    for old, new in ((b"Bob", b"Rob"), (b"line", b"lime"), (b"body", b"bodY"), (b"part", b"PART"),
                     (b"x" * 10, b"x" * 9 + b"z"), (b"Gr\xc3\xbc", b"Gru")):
        sep = msg.find(b"\n\n") if b"\r\n\r\n" not in msg else msg.find(b"\r\n\r\n")
        at = msg.find(old, sep if sep >= 0 else len(msg))
        if at >= 0:
            return msg[:at] + new + msg[at + len(old):]
    return msg + (b"\r\n" if b"\r\n" in msg else b"\n") + b"appended\r\n"


@pytest.mark.parametrize("alg", ["rsa", "ed25519"])
@pytest.mark.parametrize("canon", CANONS)
@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_ours_verify_with_dkimpy(keys, alg, canon, name):
    key, rec, rec_file = keys[alg]
    msg = MESSAGES[name]
    signed = our_sign(key, msg, canon)
    assert dkimpy_verify(rec, signed), signed.decode("utf-8", "replace")
    code, out = our_verify(rec_file, signed)
    assert code == 0 and out.startswith("pass"), out
    bad = tamper(signed)
    assert not dkimpy_verify(rec, bad)
    code, out = our_verify(rec_file, bad)
    assert code == 1 and out.startswith("fail"), out


@pytest.mark.parametrize("alg", ["rsa", "ed25519"])
@pytest.mark.parametrize("canon", CANONS)
@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_dkimpy_verify_with_ours(keys, alg, canon, name):
    key, rec, rec_file = keys[alg]
    msg = MESSAGES[name]
    signed = dkimpy_sign(key, msg, canon, "rsa-sha256" if alg == "rsa" else "ed25519-sha256")
    assert dkimpy_verify(rec, signed)
    code, out = our_verify(rec_file, signed)
    assert code == 0, out
    assert out == f"pass d={DOMAIN} s={SELECTOR} a={'rsa-sha256' if alg == 'rsa' else 'ed25519-sha256'}\n"
    code, out = our_verify(rec_file, tamper(signed))
    assert code == 1 and out.startswith("fail"), out


def test_obsolete_space_before_colon(keys):
    """RFC 5322 obs-optional: dkimpy refuses such headers; relaxed drops the space."""
    key, _, rec_file = keys["rsa"]
    msg = b"From : alice@example.org\r\nSubject\t: x\r\n\r\nbody\r\n"
    for canon in CANONS:
        code, out = our_verify(rec_file, our_sign(key, msg, canon))
        assert code == 0, out
    signed = our_sign(key, msg, "relaxed/relaxed")
    code, out = our_verify(rec_file, signed.replace(b"From : ", b"From:"))
    assert code == 0, out
    signed = our_sign(key, msg, "simple/simple")
    code, out = our_verify(rec_file, signed.replace(b"From : ", b"From:"))
    assert code == 1, out


def test_lf_input_keeps_lf_line_ends(keys):
    key, _, _ = keys["ed25519"]
    signed = our_sign(key, MESSAGES["lf_only"], "relaxed/relaxed")
    assert b"\r" not in signed
    assert signed.startswith(b"DKIM-Signature: v=1; a=ed25519-sha256;")


def test_two_signatures_one_bad(keys):
    key, rec, rec_file = keys["ed25519"]
    rkey, rrec, _ = keys["rsa"]
    msg = MESSAGES["plain"]
    once = our_sign(rkey, msg, "relaxed/relaxed")     # rsa: its record is not the one we publish
    twice = our_sign(key, once, "simple/simple")
    code, out = our_verify(rec_file, twice)
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2, out
    assert lines[0].startswith("pass") and lines[1].startswith("permerror"), out


def test_unsigned_and_garbage(keys, tmp_path):
    _, _, rec_file = keys["ed25519"]
    code, out = our_verify(rec_file, MESSAGES["plain"])
    assert (code, out) == (1, "none\n")
    for sig, result in ((b"DKIM-Signature: v=1; a=rsa-sha256; b=\r\n", "permerror"),
                        (b"DKIM-Signature: \x00\xff;;;=\r\n", "permerror"),
                        (b"DKIM-Signature: v=1; a=ed25519-sha256; d=example.org; s=s1; h=from; bh=AA==; b=AA==\r\n",
                         "fail")):
        code, out = our_verify(rec_file, sig + MESSAGES["plain"])
        assert code == 1 and out.startswith(result), out


def test_revoked_and_missing_keys(keys, tmp_path):
    key, _, _ = keys["ed25519"]
    signed = our_sign(key, MESSAGES["plain"], "relaxed/relaxed")
    revoked = tmp_path / "revoked.txt"
    revoked.write_text("v=DKIM1; k=ed25519; p=\n")
    code, out = our_verify(revoked, signed)
    assert code == 1 and out.startswith("permerror") and "key revoked" in out
    zone = tmp_path / "zone"
    zone.write_text("other._domainkey.example.org TXT v=DKIM1; p=\n")
    r = subprocess.run([binary("mail-dkimsign"), "--verify", "--zone", str(zone)], input=signed,
                       capture_output=True)
    assert r.returncode == 1 and b"no key" in r.stdout
    zone.write_text(f"{KEY_NAME} TIMEOUT\n")
    r = subprocess.run([binary("mail-dkimsign"), "--verify", "--zone", str(zone)], input=signed,
                       capture_output=True)
    assert r.returncode == 1 and r.stdout.startswith(b"temperror")


def test_expiry(keys):
    key, _, rec_file = keys["ed25519"]
    r = subprocess.run([binary("mail-dkimsign"), "-d", DOMAIN, "-s", SELECTOR, "-k", str(key),
                        "--expire", "3600"], input=MESSAGES["plain"], capture_output=True, check=True)
    code, out = our_verify(rec_file, r.stdout)
    assert code == 0, out
    code, out = our_verify(rec_file, r.stdout, "--now", "99999999999")
    assert code == 1 and "signature expired" in out


def test_rfc8463_example():
    data = "/usr/lib/python3/dist-packages/dkim/tests/data"
    if not os.path.exists(f"{data}/rfc6376.signed.msg"):
        pytest.skip("python3-dkim's test data is not installed")
    msg = open(f"{data}/rfc6376.signed.msg", "rb").read()
    zone = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"rfc8463-zone-{os.getpid()}")
    with open(zone, "w") as f:
        f.write("brisbane._domainkey.football.example.com TXT v=DKIM1; k=ed25519; "
                "p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n")
        f.write("test._domainkey.football.example.com TXT " + open(f"{data}/test.txt").read().strip() + "\n")
    try:
        r = subprocess.run([binary("mail-dkimsign"), "--verify", "--zone", zone], input=msg, capture_output=True)
    finally:
        os.unlink(zone)
    assert r.returncode == 0
    assert r.stdout.decode().splitlines() == [
        "pass d=football.example.com s=brisbane a=ed25519-sha256",
        "pass d=football.example.com s=test a=rsa-sha256"]


def test_usage_errors(tmp_path):
    r = subprocess.run([binary("mail-dkimsign"), "--domain", DOMAIN], input=b"", capture_output=True)
    assert r.returncode == 64
    r = subprocess.run([binary("mail-dkimsign"), "-d", DOMAIN, "-s", "s", "-k", str(tmp_path / "nokey")],
                       input=b"", capture_output=True)
    assert r.returncode == 66
    small = tmp_path / "small.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:512",
                    "-out", str(small)], check=True, capture_output=True)
    r = subprocess.run([binary("mail-dkimsign"), "-d", DOMAIN, "-s", "s", "-k", str(small)],
                       input=MESSAGES["plain"], capture_output=True)
    assert r.returncode == 65 and b"1024" in r.stderr
    key = tmp_path / "ed.key"
    key.write_bytes(base64.b64encode(os.urandom(32)))
    r = subprocess.run([binary("mail-dkimsign"), "-d", DOMAIN, "-s", "s", "-k", str(key)],
                       input=b"To: x@example.org\r\n\r\nno from\r\n", capture_output=True)
    assert r.returncode == 65 and b"From" in r.stderr
