"""Inbound mail authentication in mail-smtpd (MX): SPF, DKIM, DMARC and ARC
checked against a real DNS server on 127.0.0.1 (authdns.py, python3-dnslib),
through mail-smtpd's libunbound resolver. Messages are sent with smtplib,
signed by dkimpy (the oracle, Debian python3-dkim), and read back over IMAP.
"""
import base64
import imaplib
import os
import smtplib

import pytest

dkim = pytest.importorskip("dkim")  # /usr/bin/python3 with Debian's python3-dkim
nacl_signing = pytest.importorskip("nacl.signing")
pytest.importorskip("dnslib")

from authdns import LocalDns  # noqa: E402
from conftest import (binary, free_port, hand_over, make_cert, port_open, start_stored,  # noqa: E402
                      tls_context, wait_for)

PASSWORD = "correct horse"
JOE = "joe@example.com"
ANN = "ann@example.com"
AUTHSERV = "mx.example.com"

_key = nacl_signing.SigningKey.generate()
ED_PRIVATE = base64.b64encode(bytes(_key)).decode()
ED_PUBLIC = base64.b64encode(bytes(_key.verify_key)).decode()

RECORDS = {
    # good.example: SPF allows us, signs with DKIM, p=reject.
    ("good.example", "TXT"): ["v=spf1 ip4:127.0.0.1 -all"],
    ("sel._domainkey.good.example", "TXT"): [f"v=DKIM1; k=ed25519; p={ED_PUBLIC}"],
    ("_dmarc.good.example", "TXT"): ["v=DMARC1; p=reject; rua=mailto:dmarc@good.example"],
    # bank.example: p=reject, nobody may send for it.
    ("bank.example", "TXT"): ["v=spf1 -all"],
    ("_dmarc.bank.example", "TXT"): ["v=DMARC1; p=reject"],
    # shop.example: p=quarantine.
    ("shop.example", "TXT"): ["v=spf1 -all"],
    ("_dmarc.shop.example", "TXT"): ["v=DMARC1; p=quarantine"],
    # evil.example: SPF passes for it, but it is not the From domain.
    ("evil.example", "TXT"): ["v=spf1 ip4:127.0.0.1 -all"],
    ("client.example", "TXT"): ["v=spf1 a -all"],
    ("client.example", "A"): ["127.0.0.1"],
    # slow.example: its DNS answers long after the budget.
    ("slow.example", "SLOW"): 20,
    # lists.example reports to a local mailbox of another organization (which
    # authorizes it, RFC 7489 7.1) and to one that does not.
    ("_dmarc.lists.example", "TXT"): ["v=DMARC1; p=none; rua=mailto:ann@example.com,mailto:rua@other.example"],
    ("lists.example._report._dmarc.example.com", "TXT"): ["v=DMARC1"],
    # plain.example exists with no records at all.
    ("plain.example", "A"): ["192.0.2.1"],
}


def message(from_addr, subject, extra=b""):
    return (f"From: {from_addr}\r\nTo: {JOE}\r\nSubject: {subject}\r\n"
            f"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <{subject.replace(' ', '.')}@example>\r\n"
            ).encode() + extra + b"\r\nHello.\r\n"


def signed(msg, domain="good.example"):
    sig = dkim.sign(msg, b"sel", domain.encode(), ED_PRIVATE.encode(), signature_algorithm=b"ed25519-sha256",
                    include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
    return sig + msg


class Stack:
    def mailctl(self, *args, input=None):
        import subprocess
        r = subprocess.run([binary("mailctl"), "--data-dir", self.datadir, *args],
                           input=input.encode() if input else None,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        assert r.returncode == 0, r.stderr.decode()
        return r.stdout.decode()

    def send(self, mail_from, msg, helo="client.example", rcpt=JOE):
        s = smtplib.SMTP("127.0.0.1", self.mx, timeout=30)
        s.ehlo(helo)
        try:
            s.sendmail(mail_from, [rcpt], msg)
        finally:
            s.quit()

    def submit(self, mail_from, rcpts, msg, user=JOE):
        s = smtplib.SMTP("127.0.0.1", self.sub, timeout=30)
        s.ehlo("laptop.example")
        s.starttls(context=tls_context())
        s.ehlo("laptop.example")
        s.login(user, PASSWORD)
        try:
            s.sendmail(mail_from, rcpts, msg)
        finally:
            s.quit()

    def mailbox(self, name="INBOX", user=JOE):
        m = imaplib.IMAP4("127.0.0.1", self.imap, timeout=20)
        m.login(user, PASSWORD)
        typ, _ = m.select(name)
        assert typ == "OK", name
        typ, data = m.search(None, "ALL")
        out = []
        for num in data[0].split():
            typ, msg = m.fetch(num, "(BODY.PEEK[])")
            out.append(msg[0][1])
        m.logout()
        return out

    def find(self, subject, name="INBOX", user=JOE):
        for msg in self.mailbox(name, user):
            if f"Subject: {subject}\r\n".encode() in msg:
                return msg
        return None


def auth_results(msg):
    """Our Authentication-Results fields, unfolded."""
    head = msg.split(b"\r\n\r\n", 1)[0].decode()
    fields, cur = [], None
    for line in head.split("\r\n"):
        if line[:1] in (" ", "\t") and cur is not None:
            cur += " " + line.strip()
            continue
        if cur is not None:
            fields.append(cur)
        cur = line
    fields.append(cur)
    return [f for f in fields if f.lower().startswith("authentication-results:")]


@pytest.fixture
def stack(tmp_path, daemons, daemon_datadir):
    smtpd, imapd = binary("mail-smtpd"), binary("mail-imapd")
    binary("mailctl")
    dns = LocalDns(dict(RECORDS))  # a copy: a test may change its records
    datadir = daemon_datadir
    s = Stack()
    s.datadir = datadir
    s.dns = dns
    config = os.path.join(datadir, "mail.toml")
    with open(config, "w") as f:
        f.write(f'[general]\nhostname = "{AUTHSERV}"\n\n'
                f'[auth]\nresolver = "{dns.address}"\ncheck_loopback = true\ndns_budget_ms = 5000\n')
    make_cert(datadir)
    hand_over(datadir)
    start_stored(daemons, datadir, tmp_path / "stored.log")
    s.mailctl("domain", "add", "example.com")
    s.mailctl("account", "add", JOE, "--password-stdin", input=PASSWORD + "\n")
    s.mailctl("account", "add", ANN, "--password-stdin", input=PASSWORD + "\n")
    hand_over(datadir)
    s.mx, s.sub, s.imap = free_port(), free_port(), free_port()
    s.smtpd = daemons.start([smtpd, "--config", config, "--data-dir", datadir, "--pregreet-ms", "0",
                             "--listen", f"mx=127.0.0.1:{s.mx}", "--listen", f"submission=127.0.0.1:{s.sub}"],
                            log=str(tmp_path / "smtpd.log"))
    wait_for(lambda: port_open(s.mx) or not s.smtpd.alive(), what="mail-smtpd port")
    assert s.smtpd.alive(), s.smtpd.log_text()
    s.imapd = daemons.start([imapd, "--data-dir", datadir, "--listen", f"imap=127.0.0.1:{s.imap}"],
                            log=str(tmp_path / "imapd.log"))
    wait_for(lambda: port_open(s.imap) or not s.imapd.alive(), what="mail-imapd port")
    yield s
    dns.stop()
    assert s.smtpd.alive(), "mail-smtpd died:\n" + s.smtpd.log_text()


def test_pass(stack):
    stack.send("bob@good.example", signed(message("Bob <bob@good.example>", "all pass")))
    msg = stack.find("all pass")
    assert msg is not None
    ar = auth_results(msg)
    assert len(ar) == 1, ar
    assert ar[0].startswith(f"Authentication-Results: {AUTHSERV};"), ar
    assert "spf=pass smtp.mailfrom=bob@good.example" in ar[0]
    assert "spf=pass smtp.helo=client.example" in ar[0]
    assert "dkim=pass header.d=good.example" in ar[0] and "header.s=sel" in ar[0]
    assert "dmarc=pass (p=reject dis=none) header.from=good.example" in ar[0]
    assert "arc=none" in ar[0]
    # Our field is on top, above the Received field we add.
    assert msg.split(b"\r\n")[1].startswith(b"Authentication-Results:") or \
        msg.startswith(b"Authentication-Results:") or b"\r\nAuthentication-Results:" in msg.split(b"Received:")[0]


def test_dkim_fail_spf_alignment_still_passes(stack):
    msg = signed(message("bob@good.example", "tampered")).replace(b"Hello.", b"Hullo.")
    stack.send("bob@good.example", msg)
    ar = auth_results(stack.find("tampered"))[0]
    assert "dkim=fail" in ar and "header.d=good.example" in ar
    assert "dmarc=pass" in ar  # SPF of good.example passed and aligns


def test_none(stack):
    stack.send("someone@plain.example", message("someone@plain.example", "no records"))
    ar = auth_results(stack.find("no records"))[0]
    assert "spf=none" in ar and "smtp.mailfrom=someone@plain.example" in ar
    assert "dkim=none" in ar
    assert "dmarc=none header.from=plain.example" in ar


def test_dmarc_reject_is_refused(stack):
    with pytest.raises(smtplib.SMTPDataError) as e:
        stack.send("eve@evil.example", message("Bank <ceo@bank.example>", "wire money"))
    assert e.value.smtp_code == 550
    assert b"5.7.1" in e.value.smtp_error and b"bank.example" in e.value.smtp_error
    assert stack.find("wire money") is None


def test_dmarc_quarantine_goes_to_junk(stack):
    stack.send("eve@evil.example", message("Shop <sales@shop.example>", "cheap offer"))
    assert stack.find("cheap offer") is None
    msg = stack.find("cheap offer", "Junk")
    assert msg is not None
    ar = auth_results(msg)[0]
    assert "spf=pass smtp.mailfrom=eve@evil.example" in ar
    assert "dmarc=fail (p=quarantine dis=quarantine) header.from=shop.example" in ar


def test_forged_results_removed(stack):
    forged = (f"Authentication-Results: {AUTHSERV}; dkim=pass header.d=bank.example; dmarc=pass\r\n"
              f"Authentication-Results: (comment) {AUTHSERV.upper()};\r\n\tspf=pass\r\n"
              "Authentication-Results: other.example; spf=pass smtp.mailfrom=x@other.example\r\n").encode()
    stack.send("someone@plain.example", forged + message("someone@plain.example", "forged"))
    msg = stack.find("forged")
    ours = [f for f in auth_results(msg) if f.lower().startswith(f"authentication-results: {AUTHSERV}")]
    assert len(ours) == 1, auth_results(msg)
    assert "dmarc=none" in ours[0] and "header.d=bank.example" not in ours[0]
    assert any("other.example" in f for f in auth_results(msg))
    assert b"(comment)" not in msg


def test_null_sender_uses_helo(stack):
    s = smtplib.SMTP("127.0.0.1", stack.mx, timeout=30)
    s.ehlo("client.example")
    s.sendmail("", [JOE], message("postmaster@client.example", "bounce"))
    s.quit()
    ar = auth_results(stack.find("bounce"))[0]
    assert "spf=pass smtp.helo=client.example" in ar
    assert "smtp.mailfrom" not in ar


def test_dmarc_aggregate_report(stack, tmp_path):
    """Per-message results become one RFC 7489 report per policy domain that
    validates against the RFC's schema (tests/data/dmarc-rfc7489.xsd)."""
    import datetime
    import gzip
    import json
    etree = pytest.importorskip("lxml.etree")  # Debian python3-lxml
    for i in range(3):
        stack.send("bob@good.example", signed(message("bob@good.example", f"report pass {i}")))
    stack.send("eve@evil.example", message("sales@shop.example", "report quarantined"))
    with pytest.raises(smtplib.SMTPDataError):
        stack.send("eve@evil.example", message("ceo@bank.example", "report rejected"))
    stack.send("someone@plain.example", message("someone@plain.example", "report no policy"))

    out = tmp_path / "reports"
    out.mkdir()
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    files = json.loads(stack.mailctl("--format", "json", "dmarc", "report", "--date", today,
                                     "--output", str(out), "--org", AUTHSERV))
    by_domain = {f["domain"]: f for f in files}
    assert sorted(by_domain) == ["bank.example", "good.example", "shop.example"]  # plain.example has no policy
    assert by_domain["good.example"]["messages"] == 3 and by_domain["good.example"]["records"] == 1
    assert by_domain["good.example"]["rua"] == ["mailto:dmarc@good.example"]
    schema = etree.XMLSchema(etree.parse(os.path.join(os.path.dirname(__file__), "..", "data", "dmarc-rfc7489.xsd")))
    for name, f in by_domain.items():
        assert os.path.basename(f["file"]).startswith(f"{AUTHSERV}!{name}!") and f["file"].endswith(".xml.gz")
        doc = etree.fromstring(gzip.decompress(open(f["file"], "rb").read()))
        schema.assertValid(doc)
        assert doc.findtext("policy_published/domain") == name
    good = etree.fromstring(gzip.decompress(open(by_domain["good.example"]["file"], "rb").read()))
    assert good.findtext("record/row/count") == "3"
    assert good.findtext("record/row/source_ip") == "127.0.0.1"
    assert good.findtext("record/row/policy_evaluated/dkim") == "pass"
    assert good.findtext("record/auth_results/dkim/selector") == "sel"
    assert good.findtext("record/auth_results/spf/result") == "pass"
    bank = etree.fromstring(gzip.decompress(open(by_domain["bank.example"]["file"], "rb").read()))
    assert bank.findtext("record/row/policy_evaluated/disposition") == "reject"
    assert bank.findtext("record/identifiers/envelope_from") == "evil.example"
    shop = etree.fromstring(gzip.decompress(open(by_domain["shop.example"]["file"], "rb").read()))
    assert shop.findtext("record/row/policy_evaluated/disposition") == "quarantine"

    # One domain only; a day without mail writes nothing; a bad date is refused.
    one = json.loads(stack.mailctl("--format", "json", "dmarc", "report", "--date", today, "--domain", "shop.example",
                                   "--output", str(out), "--org", AUTHSERV))
    assert [f["domain"] for f in one] == ["shop.example"]
    assert json.loads(stack.mailctl("--format", "json", "dmarc", "report", "--date", "2001-01-01",
                                    "--output", str(out))) == []
    import subprocess
    r = subprocess.run([binary("mailctl"), "--data-dir", stack.datadir, "dmarc", "report", "--date", "yesterday"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert r.returncode == 65 and b"expected YYYY-MM-DD" in r.stderr


def test_dmarc_send(stack):
    """`mailctl dmarc send` mails each domain's report to its rua through the
    queue (remote) or into a mailbox (local), verifies external destinations,
    and deletes the rows it reported."""
    import datetime
    import email
    import email.policy
    import gzip
    import json
    import subprocess
    etree = pytest.importorskip("lxml.etree")  # Debian python3-lxml
    for i in range(2):
        stack.send("bob@good.example", signed(message("bob@good.example", f"send pass {i}")))
    stack.send("eve@evil.example", message("news@lists.example", "send list"))
    stack.send("eve@evil.example", message("sales@shop.example", "send no rua"))
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    config = os.path.join(stack.datadir, "mail.toml")
    sent = json.loads(stack.mailctl("--config", config, "--format", "json", "dmarc", "send", "--date", today))
    results = {(r["domain"], r["to"]): r["result"] for r in sent["reports"]}
    assert results == {("good.example", "dmarc@good.example"): "sent",
                       ("lists.example", "ann@example.com"): "sent",
                       ("lists.example", "rua@other.example"): "not authorized",
                       ("shop.example", ""): "no rua"}, sent
    assert sent["rows_deleted"] == 3  # good.example's two and lists.example's one

    # The remote report waits in the queue, from our postmaster.
    queued = json.loads(stack.mailctl("--format", "json", "queue", "list", "--recipient", "dmarc@good.example"))
    assert len(queued) == 1 and queued[0]["sender"] == f"postmaster@{AUTHSERV}", queued

    # The local one is in ann's INBOX: RFC 7489 7.2.1.1 subject and file name,
    # application/gzip, XML valid per the RFC's schema.
    msgs = stack.mailbox("INBOX", ANN)
    assert len(msgs) == 1
    msg = email.message_from_bytes(msgs[0], policy=email.policy.default)
    subject = " ".join(str(msg["Subject"]).split())
    assert subject.startswith(f"Report Domain: lists.example Submitter: {AUTHSERV} Report-ID: <"), subject
    parts = [p for p in msg.iter_attachments() if p.get_content_type() == "application/gzip"]
    assert len(parts) == 1
    name = parts[0].get_filename()
    assert name.startswith(f"{AUTHSERV}!lists.example!") and name.endswith(".xml.gz"), name
    doc = etree.fromstring(gzip.decompress(parts[0].get_content()))
    schema = etree.XMLSchema(etree.parse(os.path.join(os.path.dirname(__file__), "..", "data", "dmarc-rfc7489.xsd")))
    schema.assertValid(doc)
    assert doc.findtext("policy_published/domain") == "lists.example"
    assert doc.findtext("record/row/count") == "1"
    assert doc.findtext("record/row/policy_evaluated/disposition") == "none"

    # Sent rows are gone: the next run reports nothing new; unsent rows stay for `dmarc report`.
    again = json.loads(stack.mailctl("--config", config, "--format", "json", "dmarc", "send", "--date", today))
    assert [(r["domain"], r["result"]) for r in again["reports"]] == [("shop.example", "no rua")]
    assert again["rows_deleted"] == 0
    # Default: finished days only (today's rows wait); bad arguments are refused.
    assert json.loads(stack.mailctl("--config", config, "--format", "json", "dmarc", "send"))["reports"] == []
    for bad in (["--date", "yesterday"], ["--keep-days", "lots"], ["--email", "not an address"]):
        r = subprocess.run([binary("mailctl"), "--data-dir", stack.datadir, "dmarc", "send", *bad],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert r.returncode == 65 and len(r.stderr.splitlines()) == 1, (bad, r.stderr)


def test_dmarc_send_deferred_destination(stack):
    """A report that one rua destination took while another's authorization
    lookup (RFC 7489 7.1) failed for now keeps its rows; later runs send it to
    the deferred one only, and the rows go once it has it."""
    import datetime
    import json
    records = stack.dns.records
    records[("_dmarc.split.example", "TXT")] = ["v=DMARC1; p=none; rua=mailto:ann@example.com,mailto:rua@flaky.example"]
    records[("split.example._report._dmarc.example.com", "TXT")] = ["v=DMARC1"]
    records[("split.example._report._dmarc.flaky.example", "SERVFAIL")] = True
    stack.send("eve@evil.example", message("news@split.example", "split rua"))
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    config = os.path.join(stack.datadir, "mail.toml")

    def send():
        out = json.loads(stack.mailctl("--config", config, "--format", "json", "dmarc", "send", "--date", today))
        return {r["to"]: r["result"] for r in out["reports"] if r["domain"] == "split.example"}, out["rows_deleted"]

    def reports_to_ann():
        return [m for m in stack.mailbox("INBOX", ANN) if b"Report Domain: split.example" in m]

    assert send() == ({"ann@example.com": "sent", "rua@flaky.example": "deferred (DNS)"}, 0)
    assert send() == ({"ann@example.com": "sent before", "rua@flaky.example": "deferred (DNS)"}, 0)
    assert len(reports_to_ann()) == 1
    # The lookup answers now: flaky.example gets the report, ann no second copy.
    del records[("split.example._report._dmarc.flaky.example", "SERVFAIL")]
    records[("split.example._report._dmarc.flaky.example", "TXT")] = ["v=DMARC1"]
    assert send() == ({"ann@example.com": "sent before", "rua@flaky.example": "sent"}, 1)
    queued = json.loads(stack.mailctl("--format", "json", "queue", "list", "--recipient", "rua@flaky.example"))
    assert len(queued) == 1, queued
    assert len(reports_to_ann()) == 1
    assert send() == ({}, 0)


def test_arc_seal_on_forward(stack):
    """An alias forwarding to a remote address gets our ARC set (i=1, cv=none,
    the results we saw), signed with the alias domain's DKIM key: dkimpy's
    arc_verify (the oracle) passes it. The forwarded copy shares its content
    with the local one, which is read back here over IMAP."""
    import json
    # RFC 8617 knows rsa-sha256 only: a domain with an Ed25519 key does not seal.
    stack.mailctl("domain", "add", "ed.example")
    stack.mailctl("dkim", "keygen", "ed.example")
    stack.mailctl("alias", "add", "team@ed.example", ANN, "fwd@remote.example")
    stack.send("bob@good.example", signed(message("bob@good.example", "ed25519 alias")), rcpt="team@ed.example")
    assert b"ARC-Seal:" not in stack.find("ed25519 alias", user=ANN)

    key = json.loads(stack.mailctl("--format", "json", "dkim", "keygen", "example.com", "--selector", "arc",
                                   "--algorithm", "rsa2048"))
    stack.mailctl("alias", "add", "team@example.com", ANN, "fwd@remote.example")
    stack.send("bob@good.example", signed(message("bob@good.example", "forwarded")), rcpt="team@example.com")
    msg = stack.find("forwarded", user=ANN)
    assert msg is not None
    records = {key["dns_name"]: key["txt_record"], "sel._domainkey.good.example": f"v=DKIM1; k=ed25519; p={ED_PUBLIC}"}
    cv, results, reason = dkim.arc_verify(
        msg, dnsfunc=lambda name, timeout=5: (records.get(name.decode().rstrip(".").lower()) or "").encode() or None)
    assert cv == b"pass", (results, reason)
    head = msg.split(b"\r\n\r\n", 1)[0].decode()
    seal = " ".join(head[head.index("ARC-Seal:"):].split("\r\nARC-")[0].split())
    seal_tags = {t.split("=", 1)[0].strip(): t.split("=", 1)[1].strip() for t in seal[len("ARC-Seal:"):].split(";")}
    assert {k: seal_tags[k] for k in ("i", "a", "cv", "d", "s")} == \
        {"i": "1", "a": "rsa-sha256", "cv": "none", "d": "example.com", "s": "arc"}, seal
    aar = head[head.index("ARC-Authentication-Results:"):].split("\r\nARC-")[0]
    assert f"i=1; {AUTHSERV};" in aar and "dkim=pass" in aar and "arc=none" in aar, aar
    queued = json.loads(stack.mailctl("--format", "json", "queue", "list", "--recipient", "fwd@remote.example"))
    assert len(queued) == 2
    # Mail that is not forwarded is not sealed.
    stack.send("bob@good.example", signed(message("bob@good.example", "not forwarded")))
    assert b"ARC-Seal:" not in stack.find("not forwarded")


def test_dns_budget(stack):
    """A DNS server that does not answer costs one budget (5 s here), then the
    checks report temperror and the message is delivered."""
    stack.send("someone@slow.example", message("someone@slow.example", "slow dns"))
    ar = auth_results(stack.find("slow dns"))[0]
    assert "spf=temperror" in ar and "smtp.mailfrom=someone@slow.example" in ar
    assert "dmarc=temperror" in ar or "dmarc=none" in ar
