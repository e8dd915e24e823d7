"""MTA-STS (RFC 8461) with real peers: the policy is announced by a TXT record
in the dnslib zone of test_queue, served over HTTPS by Python's http.server on
127.0.0.x with a certificate from a test CA made here with openssl, and the MX
sinks (aiosmtpd) present certificates from the same CA; mail-queued trusts it
through queue.tls_ca_file."""
import http.server
import os
import ssl
import subprocess
import threading
import time

import pytest

from conftest import free_port, wait_for
from test_queue import JOE, Sink, assert_secured_by, qstack, wait_empty  # noqa: F401 (qstack is a fixture)

DOMAIN = "sts.example"


def openssl(*args):
    r = subprocess.run(["openssl", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert r.returncode == 0, r.stderr.decode()


class LocalCa:
    """A CA made at test time and certificates it signs for given names."""

    def __init__(self, path):
        self.path = path
        os.makedirs(path, exist_ok=True)
        self.cert = os.path.join(path, "ca.pem")
        self.key = os.path.join(path, "ca.key")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-days", "2", "-subj", "/CN=mailtk test CA", "-keyout", self.key, "-out", self.cert,
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")

    def issue(self, name):
        base = os.path.join(self.path, name)
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-subj", f"/CN={name}", "-keyout", base + ".key", "-out", base + ".csr")
        with open(base + ".ext", "w") as f:
            f.write(f"subjectAltName=DNS:{name}\n")
        openssl("x509", "-req", "-in", base + ".csr", "-CA", self.cert, "-CAkey", self.key, "-CAcreateserial",
                "-days", "2", "-extfile", base + ".ext", "-out", base + ".pem")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(base + ".pem", base + ".key")
        return ctx


class PolicyServer:
    """https://mta-sts.DOMAIN/.well-known/mta-sts.txt on host:port."""

    def __init__(self, host, port, tls, policy):
        self.policy = policy
        self.fetches = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.fetches += 1
                if self.path != "/.well-known/mta-sts.txt":
                    self.send_error(404)
                    return
                body = server.policy.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.HTTPServer((host, port), Handler)
        self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def policy(mode, mx=("mx." + DOMAIN,), max_age=86400):
    return "version: STSv1\r\n" + f"mode: {mode}\r\n" + "".join(f"mx: {m}\r\n" for m in mx) + \
        f"max_age: {max_age}\r\n"


@pytest.fixture
def sts(qstack):
    """qstack with a test CA, an HTTPS policy server for DOMAIN and the TXT record (id 1)."""
    ca = LocalCa(os.path.join(qstack.datadir, "ca"))
    https_port = free_port()
    qstack.extra_config = (f"tls_ca_file = \"{ca.cert}\"\n" f"mta_sts_port = {https_port}\n")
    qstack.zone.add(f"mta-sts.{DOMAIN}", "A", "127.0.0.20")
    qstack.zone.add(f"_mta-sts.{DOMAIN}", "TXT", "v=STSv1; id=1;")
    qstack.ca = ca
    qstack.policy_server = PolicyServer("127.0.0.20", https_port, ca.issue(f"mta-sts.{DOMAIN}"), policy("enforce"))
    yield qstack
    qstack.policy_server.stop()


def sink_with_cert(s, ip, cert_name):
    """The MX of DOMAIN (mx.DOMAIN at ip) requiring STARTTLS with a certificate for cert_name."""
    return s.sink(DOMAIN, ip, tls=s.ca.issue(cert_name))


def test_enforce_delivers_over_verified_tls(sts):
    sink = sink_with_cert(sts, "127.0.0.21", f"mx.{DOMAIN}")
    sts.sendmail("-f", JOE, f"far@{DOMAIN}")
    sts.start_queued()
    wait_empty(sts)
    assert len(sink.messages) == 1 and sink.messages[0][4]  # over TLS
    assert sts.policy_server.fetches == 1
    assert_secured_by(sts, "verified")


def test_enforce_refuses_a_certificate_for_another_name(sts):
    sink = sink_with_cert(sts, "127.0.0.22", "wrong.example")
    sts.sendmail("-f", JOE, f"far@{DOMAIN}")
    sts.start_queued()
    wait_for(lambda: sts.queue() and sts.queue()[0]["attempts"] >= 2, what="two attempts")
    e = sts.queue()[0]
    assert e["state"] == "deferred" and e["recipients"][0]["state"] == "deferred"  # not bounced
    assert "MTA-STS" in e["last_error"], e["last_error"]
    assert sink.messages == []
    assert sts.inbox() == []  # no DSN
    # the cached policy is used: one fetch for several attempts
    assert sts.policy_server.fetches == 1
    assert "TLS policy failure for sts.example" in sts.queued.log_text()


def test_enforce_skips_mx_hosts_outside_the_policy(sts):
    sts.policy_server.policy = policy("enforce", mx=("*.other.example",))
    sink = sink_with_cert(sts, "127.0.0.23", f"mx.{DOMAIN}")
    sts.sendmail("-f", JOE, f"far@{DOMAIN}")
    sts.start_queued()
    wait_for(lambda: sts.queue() and sts.queue()[0]["attempts"] >= 1, what="an attempt")
    e = sts.queue()[0]
    assert e["state"] == "deferred" and "matches its MTA-STS policy" in e["last_error"]
    assert sink.messages == []


def test_testing_mode_delivers_and_records(sts):
    sts.policy_server.policy = policy("testing")
    sink = sink_with_cert(sts, "127.0.0.24", "wrong.example")
    sts.sendmail("-f", JOE, f"far@{DOMAIN}")
    sts.start_queued()
    wait_empty(sts)
    assert len(sink.messages) == 1 and sink.messages[0][4]  # opportunistic TLS after the failed check
    assert_secured_by(sts, "unverified")
    assert "TLS policy failure for sts.example" in sts.queued.log_text()


def test_fetch_failure_uses_the_cached_policy(sts):
    sink = sink_with_cert(sts, "127.0.0.25", f"mx.{DOMAIN}")
    sts.sendmail("-f", JOE, f"far@{DOMAIN}")
    sts.start_queued()
    wait_empty(sts)
    assert len(sink.messages) == 1
    # The policy host goes away and the id changes: the refresh fails, the
    # cached enforce policy still rules out an MX host it does not name.
    sts.policy_server.stop()
    sts.zone.records[(f"_mta-sts.{DOMAIN}", "TXT")] = ["v=STSv1; id=2;"]
    sts.zone.records[(DOMAIN, "MX")] = [f"10 other.{DOMAIN}"]
    sts.zone.add(f"other.{DOMAIN}", "A", "127.0.0.25")
    time.sleep(1.5)  # the resolver keeps answers for their TTL (1 s)
    sts.sendmail("-f", JOE, f"second@{DOMAIN}")
    wait_for(lambda: sts.queue() and sts.queue()[0]["attempts"] >= 1, what="an attempt")
    e = sts.queue()[0]
    assert "matches its MTA-STS policy" in e["last_error"], e["last_error"]
    assert len(sink.messages) == 1
    assert "cannot fetch the policy" in sts.queued.log_text()


def test_no_policy_delivers_as_before(sts):
    # a domain without the TXT record: opportunistic TLS, no verification
    s = sts.sink("plain.example", "127.0.0.26", tls=sts.ca.issue("wrong.example"))
    sts.sendmail("-f", JOE, "far@plain.example")
    sts.start_queued()
    wait_empty(sts)
    assert len(s.messages) == 1 and sts.policy_server.fetches == 0
    assert_secured_by(sts, "unverified")
