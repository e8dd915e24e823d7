"""mail-smtpd with real clients: Python's smtplib, swaks (when installed) and raw
sockets for what they cannot express (BDAT, pipelining, malformed input, LMTP).
The store is served by mail-stored; accounts are provisioned with mailctl;
delivered messages are read back with mailctl (counts) and, when mail-imapd is
built, over IMAP (content)."""
import imaplib
import json
import os
import shutil
import smtplib
import socket
import subprocess
import time

import pytest

from conftest import (BIN_DIR, LineConn, binary, free_port, hand_over, make_cert, port_open, start_stored,
                      tls_context, wait_for)

PASSWORD = "correct horse"
JOE = "joe@example.com"
ANN = "ann@example.com"
FULL = "full@example.com"

MESSAGE = (b"From: Ann <ann@remote.example>\r\n"
           b"To: Joe <joe@example.com>\r\n"
           b"Subject: lunch\r\n"
           b"Message-ID: <lunch@remote.example>\r\n"
           b"\r\n"
           b"Shall we meet at noon?\r\n"
           b".A line that starts with a dot\r\n")

CONFIG = """
[smtp]
max_message_size = 200000
max_recipients = 10
max_line_length = 2000
command_timeout_s = 30
data_timeout_s = 30
max_sessions_per_ip = 10
"""


class Stack:
    def mailctl(self, *args, input=None):
        r = subprocess.run([binary("mailctl"), "--data-dir", self.datadir, *args],
                           input=input.encode() if input else None,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        assert r.returncode == 0, r.stderr.decode()
        return r.stdout.decode()

    def messages(self, address):
        info = json.loads(self.mailctl("--format", "json", "account", "show", address))
        return info["used"]["messages"]

    def smtp(self, port=None):
        s = smtplib.SMTP("127.0.0.1", port or self.mx, timeout=20)
        s.ehlo("client.example")
        return s

    def submission(self, user=JOE, password=PASSWORD):
        s = smtplib.SMTP("127.0.0.1", self.sub, timeout=20)
        s.ehlo("client.example")
        s.starttls(context=tls_context())
        s.ehlo("client.example")
        s.login(user, password)
        return s

    def raw(self, port=None):
        return Raw(socket.create_connection(("127.0.0.1", port or self.mx), timeout=20))

    def fetch_inbox(self, user):
        """The messages of user's INBOX over IMAP, or None when mail-imapd is not built."""
        if self.imap is None:
            return None
        m = imaplib.IMAP4("127.0.0.1", self.imap, timeout=20)
        m.login(user, PASSWORD)
        m.select("INBOX")
        typ, data = m.search(None, "ALL")
        out = []
        for num in data[0].split():
            typ, msg = m.fetch(num, "(BODY.PEEK[])")
            out.append(msg[0][1])
        m.logout()
        return out


class Raw(LineConn):
    """A line-level SMTP connection."""

    def reply(self):
        """One whole (possibly multi-line) reply, as a list of lines."""
        lines = [self.line()]
        while len(lines[-1]) > 3 and lines[-1][3] == "-":
            lines.append(self.line())
        return lines

    def code(self):
        return int(self.reply()[-1][:3])

    def closed(self, timeout=5):
        """True when the server closes the connection (after whatever it still sends)."""
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(4096):
                pass
            return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


@pytest.fixture
def stack(tmp_path, daemons, daemon_datadir):
    smtpd = binary("mail-smtpd")
    binary("mailctl")
    datadir = daemon_datadir
    s = Stack()
    s.datadir = datadir
    config = os.path.join(datadir, "mail.toml")
    with open(config, "w") as f:
        f.write(CONFIG)
    make_cert(datadir)
    hand_over(datadir)
    s.stored = start_stored(daemons, datadir, tmp_path / "stored.log")

    s.mailctl("domain", "add", "example.com")
    s.mailctl("domain", "add", "catch.example")
    for user in (JOE, ANN, FULL):
        s.mailctl("account", "add", user, "--password-stdin", input=PASSWORD + "\n")
    s.mailctl("quota", "set", FULL, "1000", "--messages", "1")
    s.mailctl("alias", "add", "team@example.com", JOE, ANN)
    s.mailctl("alias", "add", "@catch.example", ANN)
    s.mailctl("alias", "add", "fwd@example.com", "far@remote.example")
    hand_over(datadir)  # the store's socket too, as mail-master does

    s.mx, s.sub, s.subs = free_port(), free_port(), free_port()
    s.lmtp = os.path.join(datadir, "lmtp.sock")
    s.smtpd = daemons.start([smtpd, "--config", config, "--data-dir", datadir,
                             "--listen", f"mx=127.0.0.1:{s.mx}",
                             "--listen", f"submission=127.0.0.1:{s.sub}",
                             "--listen", f"submissions=127.0.0.1:{s.subs}",
                             "--listen", f"lmtp=unix:{s.lmtp}"],
                            log=str(tmp_path / "smtpd.log"))
    wait_for(lambda: port_open(s.mx) or not s.smtpd.alive(), what="mail-smtpd port")
    assert s.smtpd.alive(), s.smtpd.log_text()
    s.imap = None
    if os.path.exists(os.path.join(BIN_DIR, "mail-imapd")):
        s.imap = free_port()
        imapd = daemons.start([os.path.join(BIN_DIR, "mail-imapd"), "--data-dir", datadir,
                               "--listen", f"imap=127.0.0.1:{s.imap}"], log=str(tmp_path / "imapd.log"))
        wait_for(lambda: port_open(s.imap) or not imapd.alive(), what="mail-imapd port")
        if not imapd.alive():
            s.imap = None
    yield s
    assert s.smtpd.alive(), "mail-smtpd died:\n" + s.smtpd.log_text()


def test_ehlo_extensions(stack):
    s = stack.smtp()
    for ext in ("pipelining", "size", "8bitmime", "binarymime", "chunking", "smtputf8",
                "enhancedstatuscodes", "dsn", "starttls", "auth"):
        assert s.has_extn(ext), ext
    assert s.esmtp_features["size"] == "200000"
    assert not s.has_extn("requiretls")  # only over TLS
    s.quit()
    s = stack.submission()
    for ext in ("requiretls", "futurerelease", "deliverby"):
        assert s.has_extn(ext), ext
    s.quit()


def test_delivery_read_back(stack):
    s = stack.smtp()
    assert s.sendmail("ann@remote.example", [JOE], MESSAGE) == {}
    s.quit()
    assert stack.messages(JOE) == 1
    inbox = stack.fetch_inbox(JOE)
    if inbox is not None:
        assert len(inbox) == 1
        msg = inbox[0]
        assert msg.startswith(b"Return-Path: <ann@remote.example>\r\nDelivered-To: joe@example.com\r\n")
        # Filters (spam, authentication) add their fields on top of our Received.
        assert b"\r\nReceived: from client.example (127.0.0.1 [127.0.0.1])\r\n" in msg
        assert b"with ESMTP id " in msg and b"for <joe@example.com>;" in msg
        assert msg.endswith(MESSAGE)  # dot-stuffing undone, bytes unchanged


def test_unknown_user_and_relay_denied(stack):
    s = stack.smtp()
    with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
        s.sendmail("ann@remote.example", ["nobody@example.com", "someone@elsewhere.example"], MESSAGE)
    refused = e.value.recipients
    assert refused["nobody@example.com"][0] == 550 and b"5.1.1" in refused["nobody@example.com"][1]
    assert refused["someone@elsewhere.example"][0] == 550
    assert b"5.7.1" in refused["someone@elsewhere.example"][1]
    s.quit()


def test_plus_addressing_catch_all_alias(stack):
    s = stack.smtp()
    assert s.sendmail("a@remote.example", ["joe+lists@example.com"], MESSAGE) == {}
    assert s.sendmail("a@remote.example", ["anything@catch.example"], MESSAGE) == {}
    assert s.sendmail("a@remote.example", ["team@example.com", "JOE@Example.Com"], MESSAGE) == {}
    s.quit()
    assert stack.messages(JOE) == 2  # plus address, and once for team + joe
    assert stack.messages(ANN) == 2  # catch-all, team


def test_submission_auth_relay_and_ownership(stack):
    s = smtplib.SMTP("127.0.0.1", stack.sub, timeout=20)
    s.ehlo("c")
    code, _ = s.mail(JOE)
    assert code == 530
    s.quit()
    s = stack.submission()
    assert s.sendmail(JOE, ["far@remote.example", ANN], MESSAGE,
                      mail_options=["RET=HDRS", "ENVID=x+2B1"],
                      rcpt_options=["NOTIFY=SUCCESS,FAILURE"]) == {}
    with pytest.raises(smtplib.SMTPSenderRefused) as e:
        s.sendmail(ANN, [JOE], MESSAGE)
    assert e.value.smtp_code == 553 and b"5.7.1" in e.value.smtp_error
    assert s.sendmail("team@example.com", [JOE], MESSAGE) == {}  # an alias that reaches joe
    s.quit()
    assert stack.messages(ANN) == 1
    assert "queued=1 user=joe@example.com" in stack.smtpd.log_text()

    s = smtplib.SMTP("127.0.0.1", stack.sub, timeout=20)
    s.starttls(context=tls_context())
    with pytest.raises(smtplib.SMTPAuthenticationError) as e:
        s.login(JOE, "wrong")
    assert e.value.smtp_code in (535, 421)
    s.close()


def test_submissions_implicit_tls(stack):
    s = smtplib.SMTP_SSL("127.0.0.1", stack.subs, context=tls_context(), timeout=20)
    s.ehlo("c")
    assert not s.has_extn("starttls")
    s.login(JOE, PASSWORD)
    assert s.sendmail(JOE, [ANN], MESSAGE) == {}
    s.quit()
    assert stack.messages(ANN) == 1
    inbox = stack.fetch_inbox(ANN)
    if inbox is not None:
        assert b"with ESMTPSA id" in inbox[0] and b"(using TLSv1." in inbox[0]


def test_size_limit(stack):
    s = stack.smtp()
    code, msg = s.mail("a@remote.example", ["SIZE=300000"])
    assert code == 552 and b"5.3.4" in msg
    s.rset()
    big = MESSAGE + b"x" * 250000 + b"\r\n"
    with pytest.raises(smtplib.SMTPSenderRefused) as e:
        s.sendmail("a@remote.example", [JOE], big)  # smtplib declares SIZE
    assert e.value.smtp_code == 552
    s.rset()
    r = stack.raw()  # undeclared: refused after the data
    r.code()
    r.send(b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<joe@example.com>\r\nDATA\r\n")
    r.reply()
    assert [r.code() for _ in range(3)] == [250, 250, 354]
    r.send(big + b".\r\n")
    assert r.reply()[-1].startswith("552 5.3.4")
    r.close()
    assert s.sendmail("a@remote.example", [JOE], MESSAGE) == {}
    s.quit()
    assert stack.messages(JOE) == 1


def test_pipelining(stack):
    r = stack.raw()
    assert r.code() == 220
    r.send("EHLO c\r\n")
    assert "PIPELINING" in "\n".join(r.reply())
    r.send("MAIL FROM:<a@remote.example>\r\nRCPT TO:<joe@example.com>\r\nRCPT TO:<nobody@example.com>\r\n"
           "RCPT TO:<ann@example.com>\r\nDATA\r\n")
    assert [r.code() for _ in range(5)] == [250, 250, 550, 250, 354]
    r.send(MESSAGE.replace(b"\r\n.", b"\r\n..") + b".\r\nMAIL FROM:<>\r\nRCPT TO:<joe@example.com>\r\nDATA\r\n")
    assert [r.code() for _ in range(4)] == [250, 250, 250, 354]
    r.send(b"Subject: second\r\n\r\nbody\r\n.\r\nQUIT\r\n")
    assert [r.code() for _ in range(2)] == [250, 221]
    assert r.closed()
    assert stack.messages(JOE) == 2 and stack.messages(ANN) == 1


def test_bdat(stack):
    r = stack.raw()
    r.code()
    r.send("EHLO c\r\n")
    assert "CHUNKING" in "\n".join(r.reply())
    part1, part2 = MESSAGE[:40], MESSAGE[40:]
    r.send(b"MAIL FROM:<a@remote.example> BODY=BINARYMIME\r\nRCPT TO:<joe@example.com>\r\n"
           + b"BDAT %d\r\n" % len(part1) + part1 + b"BDAT %d LAST\r\n" % len(part2) + part2)
    assert [r.code() for _ in range(4)] == [250, 250, 250, 250]
    # BDAT without recipients: the chunk is read and refused.
    r.send(b"MAIL FROM:<>\r\nRCPT TO:<nobody@example.com>\r\nBDAT 5 LAST\r\nHELLO")
    assert [r.code() for _ in range(3)] == [250, 550, 554]
    r.send("NOOP\r\n")
    assert r.code() == 250
    r.close()
    assert stack.messages(JOE) == 1
    inbox = stack.fetch_inbox(JOE)
    if inbox is not None:
        assert inbox[0].endswith(MESSAGE)


def test_smtputf8(stack):
    r = stack.raw()
    r.code()
    r.send("EHLO c\r\n")
    r.reply()
    r.send("MAIL FROM:<ñandú@remote.example>\r\n".encode())
    assert r.reply()[-1].startswith("553 5.6.7")
    r.send("MAIL FROM:<ñandú@bücher.example> SMTPUTF8\r\nRCPT TO:<joe@example.com>\r\nDATA\r\n".encode())
    assert [r.code() for _ in range(3)] == [250, 250, 354]
    r.send("Subject: ünïcode\r\n\r\nGrüße\r\n.\r\n".encode())
    assert r.code() == 250
    r.close()
    assert stack.messages(JOE) == 1
    inbox = stack.fetch_inbox(JOE)
    if inbox is not None:
        assert inbox[0].startswith("Return-Path: <ñandú@xn--bcher-kva.example>".encode())
        assert b"with UTF8SMTP id" in inbox[0]


def test_quota(stack):
    s = stack.smtp()
    code, msg = s.mail("a@remote.example", ["SIZE=5000"])
    assert code == 250
    code, msg = s.rcpt(FULL)
    assert code == 552 and b"5.2.2" in msg
    s.rset()
    # Without SIZE the RCPT passes; after the data the message is refused as larger than the quota.
    r = stack.raw()
    r.code()
    r.send(b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<full@example.com>\r\nDATA\r\n")
    r.reply()
    assert [r.code() for _ in range(3)] == [250, 250, 354]
    r.send(MESSAGE + b"y" * 2000 + b"\r\n.\r\n")
    assert r.reply()[-1].startswith("552 5.2.2")
    r.close()
    assert s.sendmail("a@remote.example", [FULL], MESSAGE + b"m" * 400 + b"\r\n") == {}  # fits
    with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
        s.sendmail("a@remote.example", [FULL], MESSAGE)  # message quota reached: refused at RCPT
    assert e.value.recipients[FULL][0] == 452
    s.quit()
    assert stack.messages(FULL) == 1


def test_lmtp_per_recipient_replies(stack):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(stack.lmtp)
    r = Raw(sock)
    assert "LMTP" in r.reply()[-1]
    r.send("LHLO mta.example\r\n")
    caps = "\n".join(r.reply())
    assert "AUTH" not in caps and "STARTTLS" not in caps
    big = MESSAGE + b"z" * 2000 + b"\r\n"
    r.send("MAIL FROM:<a@remote.example>\r\nRCPT TO:<joe@example.com>\r\nRCPT TO:<far@remote.example>\r\n"
           "RCPT TO:<full@example.com>\r\nRCPT TO:<ann@example.com>\r\nDATA\r\n")
    assert [r.code() for _ in range(6)] == [250, 250, 550, 250, 250, 354]
    r.send(big + b".\r\n")
    replies = [r.reply()[-1] for _ in range(3)]
    assert replies[0].startswith("250 2.1.5 <joe@example.com>")
    assert replies[1].startswith("552 5.2.2 <full@example.com>")
    assert replies[2].startswith("250 2.1.5 <ann@example.com>")
    r.send("QUIT\r\n")
    assert r.code() == 221
    assert stack.messages(JOE) == 1 and stack.messages(ANN) == 1 and stack.messages(FULL) == 0


def test_swaks(stack):
    if shutil.which("swaks") is None:
        pytest.skip("swaks is not installed")
    r = subprocess.run(["swaks", "--server", f"127.0.0.1:{stack.mx}", "--to", "joe@example.com,team@example.com",
                        "--from", "sender@remote.example", "--pipeline", "--silent", "2"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    r = subprocess.run(["swaks", "--server", f"127.0.0.1:{stack.sub}", "--to", "far@remote.example",
                        "--from", JOE, "--auth", "PLAIN", "--auth-user", JOE, "--auth-password", PASSWORD,
                        "--silent", "2"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()  # AUTH on loopback without TLS
    r = subprocess.run(["swaks", "--socket", stack.lmtp, "--protocol", "LMTP", "--to", "ann@example.com",
                        "--from", "x@remote.example", "--silent", "2"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    assert stack.messages(JOE) == 1 and stack.messages(ANN) == 2


def test_bad_input(stack):
    r = stack.raw()
    assert r.code() == 220
    r.send("EHLO c\n")
    assert r.reply()[-1].startswith("500 5.5.2")
    r.send("EHLO c\r\n")
    r.reply()
    r.send("X" * 3000 + "\r\n")
    assert r.reply()[-1].startswith("500 5.5.2")
    r.send(b"NOOP \x00\r\n")
    assert r.code() == 500
    r.send("DATA\r\n")
    assert r.code() == 503
    r.send("MAIL FROM:<not an address>\r\n")
    assert r.code() == 501
    r.send("MAIL FROM:<a@remote.example> FOO=BAR\r\n")
    assert r.code() == 555
    # Bare LF in the content: refused, nothing stored; "\n.\n" does not end the data.
    r.send("MAIL FROM:<a@remote.example>\r\nRCPT TO:<joe@example.com>\r\nDATA\r\n")
    assert [r.code() for _ in range(3)] == [250, 250, 354]
    r.send(b"Subject: x\r\n\r\nbare\n.\nMAIL FROM:<evil@example.com>\r\n.\r\n")
    assert r.reply()[-1].startswith("554 5.6.0")
    r.send("QUIT\r\n")
    assert r.code() == 221
    assert stack.messages(JOE) == 0

    # A client that vanishes in the middle of DATA leaves nothing behind.
    r = stack.raw()
    r.code()
    r.send("EHLO c\r\nMAIL FROM:<a@remote.example>\r\nRCPT TO:<joe@example.com>\r\nDATA\r\n")
    r.reply()
    assert [r.code() for _ in range(3)] == [250, 250, 354]
    r.send(b"Subject: half\r\n\r\nsome of the body")
    r.close()

    # Too many junk commands: the session ends.
    r = stack.raw()
    r.code()
    r.send("FOO\r\n" * 25)
    codes = []
    try:
        while True:
            codes.append(r.code())
    except (EOFError, ConnectionResetError, socket.timeout):
        pass
    assert codes[-1] == 421

    # An early talker is refused.
    r = stack.raw()
    r.send("EHLO fast\r\n")
    assert r.reply()[-1].startswith("554 5.5.1")

    # TLS garbage on the implicit-TLS port, and plain SMTP there: closed, no harm.
    for junk in (b"\x16\x03\x01\x00\x05hello", b"EHLO c\r\n"):
        r = stack.raw(stack.subs)
        r.send(junk)
        assert r.closed()
    time.sleep(0.2)
    assert stack.messages(JOE) == 0
    s = stack.smtp()
    assert s.noop()[0] == 250
    s.quit()


def test_sessions_per_ip(stack):
    conns = [stack.raw() for _ in range(10)]
    for c in conns:
        assert c.code() == 220
    extra = stack.raw()
    assert extra.reply()[-1].startswith("421 4.7.0")
    assert extra.closed()
    conns.pop().close()

    def admitted():
        c = stack.raw()
        try:
            return c.code() == 220
        finally:
            c.close()
    wait_for(admitted, timeout=10, what="a free session slot")
    for c in conns:
        c.close()


def test_command_and_data_timeouts(stack, daemons, tmp_path):
    """An idle client gets 421 4.4.2 and is closed; a message cut off by the data timeout is not stored."""
    config = os.path.join(stack.datadir, "timeouts.toml")
    with open(config, "w") as f:
        f.write("[smtp]\ncommand_timeout_s = 1\ndata_timeout_s = 1\n")
    port = free_port()
    smtpd = daemons.start([binary("mail-smtpd"), "--config", config, "--data-dir", stack.datadir,
                           "--pregreet-ms", "0", "--listen", f"mx=127.0.0.1:{port}"],
                          log=str(tmp_path / "smtpd-timeouts.log"))
    wait_for(lambda: port_open(port) or not smtpd.alive(), what="mail-smtpd with short timeouts")

    idle = stack.raw(port)
    assert idle.code() == 220
    start = time.monotonic()
    assert idle.reply()[-1].startswith("421 4.4.2")
    assert time.monotonic() - start >= 0.9
    assert idle.closed()

    before = stack.messages(JOE)
    slow = stack.raw(port)
    assert slow.code() == 220
    for command, code in (("EHLO client.example", 250), ("MAIL FROM:<ann@remote.example>", 250),
                          (f"RCPT TO:<{JOE}>", 250), ("DATA", 354)):
        slow.send(command + "\r\n")
        assert slow.code() == code, command
    slow.send("Subject: never finished\r\n\r\nhalf a message\r\n")
    assert slow.reply()[-1].startswith("421 4.4.2")
    assert slow.closed()
    assert stack.messages(JOE) == before
