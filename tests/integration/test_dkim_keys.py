"""mailctl dkim keygen|list|show|remove, and DKIM signing of submitted mail
with the stored key: the copy delivered to a mailbox verifies with dkimpy
(Debian python3-dkim, the oracle) given the TXT record keygen printed.
The stack (mail-stored, mail-smtpd MX + submission, mail-imapd) is
test_auth_inbound's fixture."""
import json
import subprocess

import pytest

dkim = pytest.importorskip("dkim")

from conftest import binary  # noqa: E402
from test_auth_inbound import ANN, JOE, stack  # noqa: E402,F401 (the fixture)

EX_DATAERR, EX_CANTCREAT = 65, 73


def mailctl(stack, *args):
    return subprocess.run([binary("mailctl"), "--data-dir", stack.datadir, *args],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)


def keygen(stack, domain, *args):
    return json.loads(stack.mailctl("--format", "json", "dkim", "keygen", domain, *args))


def verify(msg, name, record):
    def dnsfunc(qname, timeout=5):
        return record.encode() if qname.decode().rstrip(".").lower() == name else None
    try:
        return dkim.DKIM(msg).verify(dnsfunc=dnsfunc)
    except dkim.DKIMException:
        return False


def signed_headers(msg):
    head = msg.split(b"\r\n\r\n", 1)[0].decode()
    sig = head[head.index("DKIM-Signature:"):]
    sig = sig.split("\r\n")[0] + "".join(l for l in sig.split("\r\n")[1:] if l[:1] in (" ", "\t"))
    h = [t.strip() for t in sig.split(";") if t.strip().startswith("h=")][0][2:]
    return [x.strip().lower() for x in h.replace("\t", "").replace(" ", "").split(":")]


def test_keygen_list_show_remove(stack):
    key = keygen(stack, "example.com", "--selector", "mail2024")
    assert key["dns_name"] == "mail2024._domainkey.example.com"
    assert key["algorithm"] == "ed25519-sha256"
    assert key["txt_record"].startswith("v=DKIM1; k=ed25519; p=")
    table = stack.mailctl("dkim", "keygen", "other.example", "--algorithm", "rsa2048")
    assert "._domainkey.other.example" in table and "v=DKIM1; k=rsa; p=" in table
    listed = json.loads(stack.mailctl("--format", "json", "dkim", "list"))
    assert sorted(k["domain"] for k in listed) == ["example.com", "other.example"]
    shown = json.loads(stack.mailctl("--format", "json", "dkim", "show", "EXAMPLE.com"))
    assert shown["txt_record"] == key["txt_record"]
    # A second key for the domain is refused, with one line saying what to do.
    r = mailctl(stack, "dkim", "keygen", "example.com")
    assert r.returncode != 0 and b"already has a DKIM key" in r.stderr and r.stderr.count(b"\n") == 1
    r = mailctl(stack, "dkim", "keygen", "example.com", "--algorithm", "dsa")
    assert r.returncode == EX_DATAERR and b"unknown algorithm" in r.stderr
    stack.mailctl("dkim", "remove", "other.example")
    r = mailctl(stack, "dkim", "show", "other.example")
    assert r.returncode != 0 and b"no DKIM key for other.example" in r.stderr


@pytest.mark.parametrize("algorithm", ["ed25519", "rsa2048"])
def test_submission_signed(stack, algorithm):
    key = keygen(stack, "example.com", "--selector", "s1", "--algorithm", algorithm)
    subject = f"signed {algorithm}"
    msg = (f"From: Joe <{JOE}>\r\nTo: Ann <{ANN}>\r\nSubject: {subject}\r\n"
           "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <s@example.com>\r\n\r\n"
           "Folded   spaces  and\ttabs \r\n\r\n\r\n").encode()
    stack.submit(JOE, [ANN], msg)
    got = stack.find(subject, user=ANN)
    assert got is not None and b"DKIM-Signature:" in got
    assert verify(got, key["dns_name"], key["txt_record"])
    h = signed_headers(got)
    assert h.count("from") == 2  # From oversigned: none can be added
    assert {"to", "subject", "date", "message-id"} <= set(h)
    # Any change breaks it.
    assert not verify(got.replace(b"Folded", b"Fooled"), key["dns_name"], key["txt_record"])


def test_unsigned_without_key(stack):
    msg = (f"From: {JOE}\r\nTo: {ANN}\r\nSubject: no key\r\n\r\nhi\r\n").encode()
    stack.submit(JOE, [ANN], msg)
    got = stack.find("no key", user=ANN)
    assert got is not None and b"DKIM-Signature:" not in got


def test_mx_mail_not_signed(stack):
    keygen(stack, "example.com", "--selector", "s1")
    stack.send("someone@plain.example", f"From: {JOE}\r\nTo: {JOE}\r\nSubject: inbound\r\n\r\nhi\r\n".encode())
    got = stack.find("inbound")
    assert got is not None and b"DKIM-Signature:" not in got
