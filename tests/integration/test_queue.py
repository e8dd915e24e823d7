"""Outbound delivery with real peers: mail-queued reads the queue from a running
mail-stored, resolves MX records through a DNS server on 127.0.0.1 (dnslib),
and delivers to SMTP sinks on other loopback addresses (aiosmtpd, with per
recipient 4xx/5xx) or to a second mail-smtpd. Mail enters through `sendmail`
(as cron would call it) and through mail-smtpd's submission port."""
import email
import json
import re
import os
import signal
import smtplib
import ssl
import subprocess
import threading
import time

import pytest

from conftest import binary, free_port, hand_over, make_cert, port_open, start_stored, tls_context, wait_for
from test_smtp import PASSWORD

dnslib = pytest.importorskip("dnslib")
pytest.importorskip("aiosmtpd")
from dnslib import server as dns_server  # noqa: E402
from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.smtp import AuthResult, LoginPassword  # noqa: E402

JOE = "joe@example.com"
MESSAGE = ("From: Joe <joe@example.com>\n"
           "To: Far <far@remote.example>\n"
           "Subject: hello there\n"
           "\n"
           "Hi!\n"
           ".leading dot\n")


class Zone:
    """A DNS server on 127.0.0.1 answering from a dict {(name, type): [values]}."""

    def __init__(self):
        self.records = {}
        self.port = free_port()
        zone = self

        class Resolver:
            def resolve(self, request, handler):
                reply = request.reply()
                q = request.q
                name = str(q.qname).rstrip(".").lower()
                qtype = dnslib.QTYPE[q.qtype]
                values = zone.records.get((name, qtype))
                if values is None and not any(n == name for n, _ in zone.records):
                    reply.header.rcode = dnslib.RCODE.NXDOMAIN
                    return reply
                for v in values or []:
                    if qtype == "MX":
                        pref, host = v.split(" ", 1)
                        rdata = dnslib.MX(host, int(pref))
                    else:
                        rdata = getattr(dnslib, qtype)(v)
                    reply.add_answer(dnslib.RR(q.qname, q.qtype, rdata=rdata, ttl=1))
                return reply

        self.server = dns_server.DNSServer(Resolver(), address="127.0.0.1", port=self.port)
        self.server.start_thread()

    def add(self, name, rtype, value):
        self.records.setdefault((name, rtype), []).append(value)

    def stop(self):
        self.server.stop()


class Sink:
    """An SMTP server on 127.0.0.x:port recording what it accepts. Recipients
    whose local part starts with "defer" get 451, "reject" 550, "flaky" 451 the
    first time and 250 after."""

    def __init__(self, host, port, auth=None, tls=None):
        self.messages = []
        self.seen = {}
        self.sessions = []  # the session of each accepted message
        self.resets = 0
        self.host = host
        sink = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                local = address.split("@")[0]
                n = sink.seen.get(address, 0)
                sink.seen[address] = n + 1
                if local.startswith("defer") or (local.startswith("flaky") and n == 0):
                    return "451 4.2.0 try later"
                if local.startswith("reject"):
                    return "550 5.1.1 no such user"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_RSET(self, server, session, envelope):
                sink.resets += 1
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                sink.sessions.append(session)
                sink.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content,
                                      getattr(session, "authenticated", False), session.ssl is not None))
                return "250 2.0.0 accepted"

        kwargs = {}
        if auth:
            def authenticator(server, session, envelope, mechanism, data):
                ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == auth
                return AuthResult(success=ok, handled=False)
            kwargs.update(authenticator=authenticator, auth_require_tls=tls is not None, auth_required=True)
        if tls:
            kwargs.update(tls_context=tls, require_starttls=True)
        self.controller = Controller(Handler(), hostname=host, port=port, ready_timeout=10, **kwargs)
        self.controller.start()

    def stop(self):
        self.controller.stop()


class QueueStack:
    pass


def server_tls(datadir):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(datadir, "tls", "cert.pem"), os.path.join(datadir, "tls", "key.pem"))
    return ctx


@pytest.fixture
def qstack(tmp_path, daemons, daemon_datadir):
    binary("mail-queued")
    datadir = daemon_datadir
    s = QueueStack()
    s.datadir = datadir
    s.tmp = tmp_path
    s.daemons = daemons
    make_cert(datadir)
    s.zone = Zone()
    s.port = free_port()
    s.sinks = {}
    s.config = os.path.join(datadir, "mail.toml")
    s.extra_config = ""

    def write_config():
        with open(s.config, "w") as f:
            f.write("[general]\nhostname = \"mx.example.com\"\n"
                    "[queue]\n"
                    f"resolver = \"127.0.0.1@{s.zone.port}\"\n"
                    f"remote_port = {s.port}\n"
                    "retry_schedule = \"1s\"\n"
                    "poll_interval_ms = 200\n"
                    "connect_timeout_s = 5\n"
                    "command_timeout_s = 10\n" + s.extra_config)
    s.write_config = write_config
    write_config()
    hand_over(datadir)
    s.stored = start_stored(daemons, datadir, tmp_path / "stored.log")

    def mailctl(*args, input=None, check=True):
        r = subprocess.run([binary("mailctl"), "--data-dir", datadir, *map(str, args)],
                           input=input.encode() if input else None,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        if check:
            assert r.returncode == 0, r.stderr.decode()
        return r
    s.mailctl = mailctl
    mailctl("domain", "add", "example.com")
    mailctl("account", "add", JOE, "--password-stdin", input=PASSWORD + "\n")

    def sink(name, host, **kw):
        """A sink on `host` serving the domain `name` through an MX record."""
        s.zone.add(name, "MX", f"10 mx.{name}")
        s.zone.add(f"mx.{name}", "A", host)
        s.sinks[name] = Sink(host, s.port, **kw)
        return s.sinks[name]
    s.sink = sink

    s.queued = None

    def start_queued():
        s.write_config()
        hand_over(datadir)
        s.queued = daemons.start([binary("mail-queued"), "--config", s.config, "--data-dir", datadir],
                                 log=str(tmp_path / "queued.log"))
        time.sleep(0.2)
        assert s.queued.alive(), s.queued.log_text()
        return s.queued
    s.start_queued = start_queued

    def sendmail(*args, message=MESSAGE, env=None):
        return subprocess.run([binary("sendmail"), "--config", s.config, "--data-dir", datadir, *args],
                              input=message.encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=60, env=env)
    s.sendmail = sendmail

    def queue():
        return json.loads(mailctl("--format", "json", "queue", "list").stdout)
    s.queue = queue

    def inbox(address=JOE):
        """The messages in address's INBOX, exported as a Maildir by mail-export."""
        out = tmp_path / f"export-{time.monotonic_ns()}"
        r = subprocess.run([binary("mail-export"), "--data-dir", datadir, "-a", address, "-m", "INBOX",
                            "--crlf", "-q", "--online", str(out)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        assert r.returncode == 0, r.stderr.decode()
        msgs = []
        for root, dirs, files in os.walk(out):
            for f in sorted(files):
                if os.path.basename(root) in ("cur", "new"):
                    with open(os.path.join(root, f), "rb") as fh:
                        msgs.append(fh.read())
        return msgs
    s.inbox = inbox
    yield s
    for sk in s.sinks.values():
        sk.stop()
    s.zone.stop()


def wait_empty(s, timeout=20):
    wait_for(lambda: s.queue() == [], timeout=timeout, interval=0.1, what="an empty queue")


def assert_secured_by(s, how):
    """mail-queued logged the delivery's session as secured by `how`: dane,
    verified, unverified (opportunistic TLS) or none."""
    log = s.queued.log_text()
    assert re.search(r" delivered .* tls=" + how + "$", log, re.M), log


def test_delivery_by_mx_strips_local_trace_fields(qstack):
    sink = qstack.sink("remote.example", "127.0.0.2")
    r = qstack.sendmail("-f", JOE, "far@remote.example")
    assert r.returncode == 0, r.stderr
    q = qstack.queue()
    assert len(q) == 1 and q[0]["recipients"][0]["address"] == "far@remote.example"
    qstack.start_queued()
    wait_empty(qstack)
    assert len(sink.messages) == 1
    sender, rcpts, content, _, _ = sink.messages[0]
    assert sender == JOE and rcpts == ["far@remote.example"]
    assert not content.startswith(b"Return-Path")
    assert b"Received: by mx.example.com (mailtk sendmail" in content
    assert b"\r\n.leading dot\r\n" in content  # dot-stuffing undone by the peer
    assert b"Message-ID: <" in content and b"Date: " in content
    assert_secured_by(qstack, "none")  # the sink offers no STARTTLS


def test_partial_success_then_retry_then_dsn(qstack):
    sink = qstack.sink("remote.example", "127.0.0.3")
    r = qstack.sendmail("-f", JOE, "far@remote.example", "flaky@remote.example", "reject@remote.example")
    assert r.returncode == 0, r.stderr
    qstack.start_queued()
    wait_empty(qstack)
    # far at once, flaky on the retry, reject never
    delivered = sorted(r for m in sink.messages for r in m[1])
    assert delivered == ["far@remote.example", "flaky@remote.example"]
    assert sink.seen["flaky@remote.example"] == 2
    # the failure comes back as an RFC 3464 report in the local sender's INBOX
    wait_for(lambda: len(qstack.inbox()) == 1, what="the DSN in the INBOX")
    dsn = email.message_from_bytes(qstack.inbox()[0])
    assert dsn.get_content_type() == "multipart/report"
    assert dsn.get_param("report-type") == "delivery-status"
    assert dsn["To"] == f"<{JOE}>" and dsn["Auto-Submitted"] == "auto-replied"
    parts = dsn.get_payload()
    status = parts[1]
    assert status.get_content_type() == "message/delivery-status"
    fields = [dict(p.items()) for p in status.get_payload()]
    assert fields[0]["Reporting-MTA"] == "dns; mx.example.com"
    rcpt = fields[1]
    assert rcpt["Final-Recipient"] == "rfc822; reject@remote.example"
    assert rcpt["Action"] == "failed" and rcpt["Status"] == "5.1.1"
    assert rcpt["Remote-MTA"] == "dns; mx.remote.example"
    assert rcpt["Diagnostic-Code"].startswith("smtp; 550 5.1.1")
    assert parts[2].get_content_type() == "message/rfc822"
    assert b"Subject: hello there" in qstack.inbox()[0]


def test_temporary_failure_stays_deferred(qstack):
    qstack.sink("remote.example", "127.0.0.4")
    qstack.extra_config = ""
    qstack.sendmail("-f", JOE, "defer@remote.example")
    qstack.start_queued()
    wait_for(lambda: qstack.queue() and qstack.queue()[0]["attempts"] >= 2, what="two attempts")
    e = qstack.queue()[0]
    assert e["state"] == "deferred"
    assert e["recipients"][0]["state"] == "deferred"
    assert e["recipients"][0]["last_reply"].startswith("451 4.2.0")
    shown = json.loads(qstack.mailctl("--format", "json", "queue", "show", e["id"]).stdout)
    assert shown["id"] == e["id"] and shown["last_error"].startswith("451")
    table = qstack.mailctl("queue", "list").stdout.decode()
    assert "defer@remote.example" in table and "deferred" in table
    assert qstack.inbox() == []  # no DSN for a delay


def test_null_mx_and_unknown_domain_bounce_at_once(qstack):
    qstack.zone.add("nomail.example", "MX", "0 .")
    qstack.sendmail("-f", JOE, "a@nomail.example", "b@nxdomain.example")
    qstack.start_queued()
    wait_empty(qstack)
    wait_for(lambda: len(qstack.inbox()) == 1, what="the DSN")
    text = qstack.inbox()[0].decode()
    assert "Final-Recipient: rfc822; a@nomail.example" in text and "Status: 5.1.10" in text
    assert "Final-Recipient: rfc822; b@nxdomain.example" in text and "Status: 5.1.2" in text


def test_null_sender_never_bounced(qstack):
    qstack.sink("remote.example", "127.0.0.5")
    r = qstack.sendmail("-f", "<>", "reject@remote.example")
    assert r.returncode == 0, r.stderr
    qstack.start_queued()
    wait_empty(qstack)
    time.sleep(0.5)
    assert qstack.inbox() == []
    assert "bounced" in qstack.queued.log_text()


def test_smarthost_with_starttls_and_auth(qstack):
    pw = qstack.tmp / "smarthost.pw"
    pw.write_text("s3cret\n")
    os.chmod(pw, 0o600)
    sink = Sink("127.0.0.6", qstack.port, auth=("relay", "s3cret"), tls=server_tls(qstack.datadir))
    qstack.sinks["smarthost"] = sink
    qstack.extra_config = (f"smarthost = \"127.0.0.6:{qstack.port}\"\n"
                           "smarthost_user = \"relay\"\n"
                           f"smarthost_password_file = \"{pw}\"\n"
                           "smarthost_require_tls = true\n"
                           "smarthost_tls_verify = false\n")
    # no DNS at all for this domain: the smarthost takes everything
    qstack.sendmail("-f", JOE, "someone@elsewhere.example")
    qstack.start_queued()
    wait_empty(qstack)
    assert len(sink.messages) == 1
    _, rcpts, _, authenticated, tls = sink.messages[0]
    assert rcpts == ["someone@elsewhere.example"] and authenticated and tls


def test_smarthost_wrong_password_defers(qstack):
    pw = qstack.tmp / "smarthost.pw"
    pw.write_text("wrong\n")
    sink = Sink("127.0.0.7", qstack.port, auth=("relay", "s3cret"), tls=server_tls(qstack.datadir))
    qstack.sinks["smarthost"] = sink
    qstack.extra_config = (f"smarthost = \"127.0.0.7:{qstack.port}\"\nsmarthost_user = \"relay\"\n"
                           f"smarthost_password_file = \"{pw}\"\nsmarthost_tls_verify = false\n")
    qstack.sendmail("-f", JOE, "someone@elsewhere.example")
    qstack.start_queued()
    wait_for(lambda: qstack.queue()[0]["attempts"] >= 1, what="an attempt")
    e = qstack.queue()[0]
    assert e["state"] == "deferred" and "authentication failed" in e["last_error"]
    assert sink.messages == []


def test_local_domain_never_leaves(qstack):
    qstack.extra_config = f"smarthost = \"127.0.0.9:{qstack.port}\"\n"  # nothing listens there
    # queued for a local domain (as when the domain is added after queueing): delivered locally
    qstack.sendmail("-f", JOE, "far@later.example")
    qstack.mailctl("domain", "add", "later.example")
    qstack.mailctl("account", "add", "far@later.example", "--password-stdin", input=PASSWORD + "\n")
    qstack.start_queued()
    wait_empty(qstack)
    assert len(qstack.inbox("far@later.example")) == 1


def test_mailctl_queue_hold_release_delete_bounce_flush(qstack):
    sink = qstack.sink("remote.example", "127.0.0.8")
    for _ in range(3):
        assert qstack.sendmail("-f", JOE, "far@remote.example").returncode == 0
    ids = [e["id"] for e in qstack.queue()]
    assert len(ids) == 3
    held = json.loads(qstack.mailctl("--format", "json", "queue", "hold", ids[0]).stdout)
    assert held == {"held": [ids[0]]}
    qstack.mailctl("queue", "delete", ids[1])
    qstack.mailctl("queue", "bounce", ids[2])
    assert [e["state"] for e in qstack.queue()] == ["held", "bouncing"]
    assert [e["id"] for e in qstack.queue()] == [ids[0], ids[2]]
    # filters
    assert [e["id"] for e in json.loads(qstack.mailctl("--format", "json", "queue", "list",
                                                       "--state", "held").stdout)] == [ids[0]]
    assert json.loads(qstack.mailctl("--format", "json", "queue", "list", "--domain", "other.example").stdout) == []
    r = qstack.mailctl("queue", "show", "999999", check=False)
    assert r.returncode == 67 and b"no such queue entry" in r.stderr
    r = qstack.mailctl("queue", "list", "--state", "lost", check=False)
    assert r.returncode == 65
    qstack.start_queued()
    wait_for(lambda: [e["id"] for e in qstack.queue()] == [ids[0]], what="the bounce")
    wait_for(lambda: len(qstack.inbox()) == 1, what="the DSN")
    assert b"Returned to the sender by the postmaster" in qstack.inbox()[0]
    time.sleep(0.5)
    assert sink.messages == []  # held: not sent
    qstack.mailctl("queue", "release", ids[0])
    wait_empty(qstack)
    assert len(sink.messages) == 1
    assert json.loads(qstack.mailctl("--format", "json", "queue", "flush").stdout) == {"flushed": []}


def test_mailctl_queue_stats(qstack):
    empty = json.loads(qstack.mailctl("--format", "json", "queue", "stats").stdout)
    assert empty == {"messages": 0, "queued": 0, "deferred": 0, "held": 0, "bouncing": 0, "recipients": 0,
                     "bytes": 0, "oldest_age_s": 0}
    qstack.sendmail("-f", JOE, "a@one.example", "b@two.example")
    time.sleep(1.1)  # the first one is older
    qstack.sendmail("-f", JOE, "c@one.example")
    first = min(e["id"] for e in qstack.queue())
    qstack.mailctl("queue", "hold", first)
    st = json.loads(qstack.mailctl("--format", "json", "queue", "stats").stdout)
    assert st["messages"] == 2 and st["held"] == 1 and st["queued"] == 1 and st["deferred"] == 0
    assert st["recipients"] == 3 and st["bytes"] > 100 and st["oldest_age_s"] >= 1
    table = qstack.mailctl("queue", "stats").stdout.decode().splitlines()
    assert table[0].split() == ["MESSAGES", "QUEUED", "DEFERRED", "HELD", "BOUNCING", "RECIPIENTS", "SIZE", "OLDEST"]
    assert table[1].split()[:6] == ["2", "1", "0", "1", "0", "3"]


def test_several_messages_share_one_session(qstack):
    sink = qstack.sink("remote.example", "127.0.0.13")
    for i in range(6):
        assert qstack.sendmail("-f", JOE, f"far{i}@remote.example").returncode == 0
    qstack.extra_config = "max_per_destination = 1\n"
    qstack.start_queued()
    wait_empty(qstack)
    assert len(sink.messages) == 6
    assert len({id(s) for s in sink.sessions}) == 1  # one connection, RSET between
    assert sink.resets >= 5


def test_no_session_reuse_when_disabled(qstack):
    sink = qstack.sink("remote.example", "127.0.0.14")
    for i in range(3):
        assert qstack.sendmail("-f", JOE, f"far{i}@remote.example").returncode == 0
    qstack.extra_config = "max_per_destination = 1\nsession_idle_s = 0\n"
    qstack.start_queued()
    wait_empty(qstack)
    assert len({id(s) for s in sink.sessions}) == 3 and sink.resets == 0


def test_sendmail_as_cron_calls_it(qstack):
    sink = qstack.sink("remote.example", "127.0.0.2")
    # cron: sendmail -FCronDaemon -i -B8BITMIME -oem ... here with -t and -oi
    script = qstack.tmp / "job.sh"
    script.write_text("#!/bin/sh\n"
                      f"printf 'To: far@remote.example, Joe <{JOE}>\\nBcc: hidden@remote.example\\n"
                      "Subject: cron job\\n\\noutput\\n.\\nmore\\n' | "
                      f"{binary('sendmail')} --config {qstack.config} --data-dir {qstack.datadir} "
                      "-FCronDaemon -oi -t -f root@example.com\n")
    os.chmod(script, 0o755)
    r = subprocess.run([str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert r.returncode == 0, r.stderr
    assert len(qstack.inbox()) == 1
    local = qstack.inbox()[0]
    assert b"Bcc" not in local and b"\r\noutput\r\n.\r\nmore\r\n" in local
    assert b'From: "CronDaemon" <root@example.com>' in local
    qstack.start_queued()
    wait_empty(qstack)
    assert sorted(sink.messages[0][1]) == ["far@remote.example", "hidden@remote.example"]
    assert b"Bcc" not in sink.messages[0][2]


def test_sendmail_errors(qstack):
    r = qstack.sendmail("-f", JOE, "nobody@example.com")
    assert r.returncode == 67 and b"no such user" in r.stderr
    r = qstack.sendmail("-f", JOE, "not an address")
    assert r.returncode == 65
    r = qstack.sendmail("-f", JOE)
    assert r.returncode == 65 and b"no recipients" in r.stderr
    # the stack down: EX_TEMPFAIL, nothing claimed delivered
    qstack.stored.stop()
    r = qstack.sendmail("-f", JOE, "far@remote.example")
    assert r.returncode == 75 and r.stderr.decode().count("\n") == 1
    assert b"not sent" in r.stderr


def test_delivery_to_a_second_mail_smtpd_with_pipelining_and_chunking(qstack, daemons, tmp_path):
    """A real MTA as the peer: mail-smtpd on its own data dir, with DSN."""
    other = str(tmp_path / "other")
    os.makedirs(other)
    make_cert(other)
    hand_over(other)
    start_stored(daemons, other, tmp_path / "other-stored.log")
    for args in (("domain", "add", "remote.example"),
                 ("account", "add", "far@remote.example", "--password-stdin")):
        r = subprocess.run([binary("mailctl"), "--data-dir", other, *args], input=PASSWORD.encode() + b"\n",
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        assert r.returncode == 0, r.stderr
    hand_over(other)
    qstack.zone.add("remote.example", "MX", "10 mx.remote.example")
    qstack.zone.add("mx.remote.example", "A", "127.0.0.10")
    smtpd = daemons.start([binary("mail-smtpd"), "--data-dir", other, "--listen",
                           f"mx=127.0.0.10:{qstack.port}", "--pregreet-ms", "0"],
                          log=str(tmp_path / "other-smtpd.log"))
    wait_for(lambda: port_open(qstack.port, "127.0.0.10") or not smtpd.alive(), what="second smtpd")
    body = MESSAGE.replace("Hi!", "Gr\u00fc\u00dfe!")  # 8-bit body: BODY=8BITMIME
    assert qstack.sendmail("-f", JOE, "far@remote.example", "nobody@remote.example", message=body).returncode == 0
    qstack.start_queued()
    wait_empty(qstack)
    r = subprocess.run([binary("mailctl"), "--data-dir", other, "--format", "json", "account", "show",
                        "far@remote.example"], stdout=subprocess.PIPE, timeout=60)
    assert json.loads(r.stdout)["used"]["messages"] == 1
    wait_for(lambda: len(qstack.inbox()) == 1, what="the DSN for nobody@")
    assert b"Final-Recipient: rfc822; nobody@remote.example" in qstack.inbox()[0]


def test_kill_9_mid_delivery_loses_nothing(qstack):
    """A peer that stalls after DATA: mail-queued is killed with the message in
    flight; the restarted daemon delivers it (once more, as SMTP allows)."""
    stall = threading.Event()
    sink = qstack.sink("remote.example", "127.0.0.11")
    original = sink.controller.handler.handle_DATA

    async def slow_data(server, session, envelope):
        if not stall.is_set():
            stall.set()
            import asyncio
            await asyncio.sleep(3)
            return "451 4.3.0 lost"
        return await original(server, session, envelope)
    sink.controller.handler.handle_DATA = slow_data
    qstack.sendmail("-f", JOE, "far@remote.example")
    d = qstack.start_queued()
    wait_for(stall.is_set, what="the delivery in flight")
    d.kill(signal.SIGKILL)
    assert len(qstack.queue()) == 1  # still queued
    qstack.start_queued()
    wait_empty(qstack, timeout=30)
    assert len(sink.messages) == 1


def test_sigterm_stops_cleanly(qstack):
    d = qstack.start_queued()
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(timeout=10) == 0


def submission(qstack, daemons, tmp_path):
    """An authenticated session with a mail-smtpd submission port on the queue's store."""
    sub = free_port()
    smtpd = daemons.start([binary("mail-smtpd"), "--data-dir", qstack.datadir, "--listen",
                           f"submission=127.0.0.1:{sub}"], log=str(tmp_path / "smtpd.log"))
    wait_for(lambda: port_open(sub) or not smtpd.alive(), what="mail-smtpd")
    s = smtplib.SMTP("127.0.0.1", sub, timeout=20)
    s.ehlo("client.example")
    s.starttls(context=tls_context())
    s.ehlo("client.example")
    s.login(JOE, PASSWORD)
    return s


def test_submission_dsn_parameters_are_honoured(qstack, daemons, tmp_path):
    """NOTIFY, ORCPT, ENVID and RET given to mail-smtpd's submission port reach the DSN."""
    sink = qstack.sink("remote.example", "127.0.0.12")
    s = submission(qstack, daemons, tmp_path)
    assert s.mail(JOE, ["RET=HDRS", "ENVID=env+2B42"])[0] == 250
    assert s.rcpt("reject1@remote.example", ["NOTIFY=FAILURE", "ORCPT=rfc822;orig+2Bx@remote.example"])[0] == 250
    assert s.rcpt("reject2@remote.example", ["NOTIFY=NEVER"])[0] == 250
    assert s.rcpt("far@remote.example", ["NOTIFY=SUCCESS"])[0] == 250
    assert s.data(MESSAGE.replace("\n", "\r\n").encode() + b"secret body line\r\n")[0] == 250
    s.quit()
    qstack.start_queued()
    wait_empty(qstack)
    wait_for(lambda: len(qstack.inbox()) == 1, what="one DSN")
    time.sleep(0.5)
    assert len(qstack.inbox()) == 1
    text = qstack.inbox()[0].decode()
    assert "Original-Envelope-Id: env+42" in text
    assert "Original-Recipient: rfc822;orig+x@remote.example" in text
    assert "Final-Recipient: rfc822; reject1@remote.example\r\nAction: failed" in text
    assert "reject2@" not in text  # NOTIFY=NEVER
    # the sink has no DSN extension: the success is reported as relayed
    assert "Final-Recipient: rfc822; far@remote.example\r\nAction: relayed\r\nStatus: 2.0.0" in text
    assert "text/rfc822-headers" in text and "secret body line" not in text  # RET=HDRS
    assert [m[1] for m in sink.messages] == [["far@remote.example"]]


def test_delay_report_once_for_notify_delay(qstack, daemons, tmp_path):
    qstack.sink("remote.example", "127.0.0.15")
    s = submission(qstack, daemons, tmp_path)
    assert s.mail(JOE)[0] == 250
    assert s.rcpt("defer@remote.example", ["NOTIFY=DELAY,FAILURE"])[0] == 250
    assert s.rcpt("defer2@remote.example", ["NOTIFY=FAILURE"])[0] == 250  # no delay report asked
    assert s.data(MESSAGE.replace("\n", "\r\n").encode())[0] == 250
    s.quit()
    qstack.extra_config = "delay_warning_s = 1\n"
    qstack.start_queued()
    wait_for(lambda: qstack.queue() and qstack.queue()[0]["attempts"] >= 4, what="four attempts")
    msgs = qstack.inbox()
    assert len(msgs) == 1, msgs  # once, however many attempts follow
    text = msgs[0].decode()
    assert "Subject: Delayed Mail (still being retried)" in text
    assert "Final-Recipient: rfc822; defer@remote.example\r\nAction: delayed\r\nStatus: 4.2.0" in text
    assert "defer2@" not in text
    assert qstack.queue()[0]["recipients"][0]["state"] == "deferred"
