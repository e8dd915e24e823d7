"""DANE for SMTP (RFC 7672) with real peers: a zone `example.` signed here with
ldns-signzone (Debian ldnsutils) and an unsigned zone `nosig.`, both served by
nsd on 127.0.0.1; mail-queued's validating resolver forwards to it and trusts
the signed zone's DS record (queue.dnssec_trust_anchor). The MX sinks
(aiosmtpd) present certificates made here with openssl that match the TLSA
records or not."""
import os
import re
import shutil
import subprocess
import time

import dnslib
import pytest

from conftest import free_port, wait_for
from test_queue import JOE, Sink, assert_secured_by, qstack, wait_empty  # noqa: F401 (qstack is a fixture)
from test_mta_sts import LocalCa, PolicyServer, openssl, policy

if not (shutil.which("nsd") or os.path.exists("/usr/sbin/nsd")) or not shutil.which("ldns-signzone"):
    pytest.skip("nsd and ldnsutils are needed (scripts/install-deps)", allow_module_level=True)

NSD = shutil.which("nsd") or "/usr/sbin/nsd"


def spki_sha256(cert_pem):
    pub = subprocess.run(["openssl", "x509", "-in", cert_pem, "-pubkey", "-noout"], stdout=subprocess.PIPE,
                         check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub, stdout=subprocess.PIPE,
                         check=True).stdout
    return subprocess.run(["openssl", "dgst", "-sha256", "-r"], input=der, stdout=subprocess.PIPE,
                          check=True).stdout.split()[0].decode()


def cert_sha256(cert_pem):
    der = subprocess.run(["openssl", "x509", "-in", cert_pem, "-outform", "DER"], stdout=subprocess.PIPE,
                         check=True).stdout
    return subprocess.run(["openssl", "dgst", "-sha256", "-r"], input=der, stdout=subprocess.PIPE,
                          check=True).stdout.split()[0].decode()


class SignedZones:
    """`example.` (signed) and `nosig.` (unsigned) served by nsd; records added
    with add() before start(). Names in `bogus` get their TLSA signature broken."""

    def __init__(self, path, daemons):
        self.path = path
        self.daemons = daemons
        self.records = {"example.": [], "nosig.": []}
        self.bogus = []
        os.makedirs(path, exist_ok=True)

    def add(self, line):
        zone = "nosig." if line.split()[0].endswith(".nosig.") else "example."
        self.records[zone].append(line)

    def mx(self, domain, ip, port, tlsa=None):
        """domain's MX mx.domain at ip, with TLSA "u s m hex" at _port._tcp.mx.domain."""
        self.add(f"{domain}. IN MX 10 mx.{domain}.")
        self.add(f"mx.{domain}. IN A {ip}")
        if tlsa:
            self.add(f"_{port}._tcp.mx.{domain}. IN TLSA {tlsa}")

    def start(self):
        for zone, lines in self.records.items():
            with open(os.path.join(self.path, zone + "zone"), "w") as f:
                f.write(f"$TTL 300\n{zone} IN SOA ns.{zone} admin.{zone} 1 3600 600 86400 300\n"
                        f"{zone} IN NS ns.{zone}\nns.{zone} IN A 127.0.0.1\n" + "\n".join(lines) + "\n")
        key = subprocess.run(["ldns-keygen", "-a", "ECDSAP256SHA256", "-k", "example."], cwd=self.path,
                             stdout=subprocess.PIPE, check=True).stdout.decode().strip()
        subprocess.run(["ldns-signzone", "example.zone", key], cwd=self.path, check=True)
        signed = os.path.join(self.path, "example.zone.signed")
        text = open(signed).read()
        for name in self.bogus:  # flip a character of the TLSA record's signature
            text = re.sub(r"(^" + re.escape(name) + r"\s+\d+\s+IN\s+RRSIG\s+TLSA .* )(\S)",
                          lambda m: m.group(1) + ("A" if m.group(2) != "A" else "B"), text, flags=re.M)
        open(signed, "w").write(text)
        self.trust_anchor = os.path.join(self.path, "trust-anchor.ds")
        shutil.copy(os.path.join(self.path, key + ".ds"), self.trust_anchor)
        os.chmod(self.trust_anchor, 0o644)
        self.port = free_port()
        conf = os.path.join(self.path, "nsd.conf")
        with open(conf, "w") as f:
            f.write(f'server:\n  ip-address: 127.0.0.1\n  port: {self.port}\n  username: ""\n'
                    f'  zonesdir: "{self.path}"\n  database: ""\n  pidfile: "{self.path}/nsd.pid"\n'
                    f'  xfrdfile: "{self.path}/xfrd.state"\n  zonelistfile: "{self.path}/zone.list"\n'
                    '  server-count: 1\n  verbosity: 1\nremote-control:\n  control-enable: no\n'
                    'zone:\n  name: example.\n  zonefile: example.zone.signed\n'
                    'zone:\n  name: nosig.\n  zonefile: nosig.zone\n')
        self.nsd = self.daemons.start([NSD, "-d", "-c", conf], log=os.path.join(self.path, "nsd.log"))
        # nsd opens its sockets before it has read the zones: ready is when it answers
        wait_for(lambda: self.answers() or not self.nsd.alive(), what="nsd")
        assert self.nsd.alive(), self.nsd.log_text()

    def answers(self):
        try:
            reply = dnslib.DNSRecord.parse(dnslib.DNSRecord.question("example.", "SOA").send(
                "127.0.0.1", self.port, timeout=0.5))
        except (OSError, dnslib.DNSError):
            return False
        return reply.header.rcode == dnslib.RCODE.NOERROR and len(reply.rr) > 0


@pytest.fixture
def dane(qstack, tmp_path):
    """qstack whose resolver is nsd with the signed zone and its trust anchor."""
    qstack.zones = SignedZones(str(tmp_path / "dns"), qstack.daemons)
    qstack.ca = LocalCa(os.path.join(qstack.datadir, "ca"))

    def start():
        qstack.zones.start()
        qstack.zone.port = qstack.zones.port  # write_config's resolver
        qstack.extra_config = f'dnssec_trust_anchor = "{qstack.zones.trust_anchor}"\n'
        return qstack.start_queued()
    qstack.start = start

    def sink(ip, cert=None, chain=False):
        """A sink on ip requiring STARTTLS with cert (a name issued by the CA), or without TLS."""
        ctx = None
        if cert:
            ctx = qstack.ca.issue(cert)
            if chain:  # the CA certificate sent after the leaf (DANE-TA needs it)
                base = os.path.join(qstack.ca.path, cert)
                with open(base + ".chain", "w") as f:
                    f.write(open(base + ".pem").read() + open(qstack.ca.cert).read())
                ctx.load_cert_chain(base + ".chain", base + ".key")
        s = Sink(ip, qstack.port, tls=ctx)
        qstack.sinks[ip] = s
        return s
    qstack.dane_sink = sink
    qstack.pem = lambda name: os.path.join(qstack.ca.path, name + ".pem")
    return qstack


def attempted(s, n=1):
    wait_for(lambda: s.queue() and s.queue()[0]["attempts"] >= n, timeout=20, what=f"{n} attempt(s)")
    return s.queue()[0]


def test_dane_ee_match_delivers_without_checking_the_name(dane):
    sink = dane.dane_sink("127.0.0.41", cert="not-the-mx-name.other")
    dane.zones.mx("ee.example", "127.0.0.41", dane.port, f"3 1 1 {spki_sha256(dane.pem('not-the-mx-name.other'))}")
    dane.sendmail("-f", JOE, "far@ee.example")
    dane.start()
    wait_empty(dane)
    assert len(sink.messages) == 1 and sink.messages[0][4]  # over TLS
    assert_secured_by(dane, "dane")  # opportunistic TLS would not check the name either


def test_dane_ee_mismatch_defers(dane):
    sink = dane.dane_sink("127.0.0.42", cert="mx.wrong.example")
    other = os.path.join(dane.ca.path, "other")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-subj", "/CN=other", "-keyout", other + ".key", "-out", other + ".pem")
    dane.zones.mx("wrong.example", "127.0.0.42", dane.port, f"3 1 1 {spki_sha256(other + '.pem')}")
    dane.sendmail("-f", JOE, "far@wrong.example")
    dane.start()
    e = attempted(dane, 2)
    assert e["state"] == "deferred" and e["recipients"][0]["state"] == "deferred"  # not bounced
    assert "DANE" in e["last_error"], e["last_error"]
    assert sink.messages == [] and dane.inbox() == []
    assert "TLS policy failure for wrong.example" in dane.queued.log_text()


def test_dane_ta_with_the_mx_name_delivers(dane):
    sink = dane.dane_sink("127.0.0.43", cert="mx.ta.example", chain=True)
    dane.zones.mx("ta.example", "127.0.0.43", dane.port, f"2 0 1 {cert_sha256(dane.ca.cert)}")
    dane.sendmail("-f", JOE, "far@ta.example")
    dane.start()
    wait_empty(dane)
    assert len(sink.messages) == 1 and sink.messages[0][4]
    assert_secured_by(dane, "dane")


def test_aliased_mx_host_takes_the_records_of_its_cname_target(dane):
    # RFC 7672 2.2.2: the records at the expanded name win (those at the MX
    # name would not match), and a DANE-TA peer may carry the MX name
    sink = dane.dane_sink("127.0.0.52", cert="mx.cn.example")
    dane.zones.add("cn.example. IN MX 10 mx.cn.example.")
    dane.zones.add("mx.cn.example. IN CNAME real.cn.example.")
    dane.zones.add("real.cn.example. IN A 127.0.0.52")
    dane.zones.add(f"_{dane.port}._tcp.real.cn.example. IN TLSA 3 1 1 {spki_sha256(dane.pem('mx.cn.example'))}")
    dane.zones.add(f"_{dane.port}._tcp.mx.cn.example. IN TLSA 3 1 1 {'ab' * 32}")
    ta = dane.dane_sink("127.0.0.53", cert="mx.cnta.example", chain=True)
    dane.zones.add("cnta.example. IN MX 10 mx.cnta.example.")
    dane.zones.add("mx.cnta.example. IN CNAME real.cnta.example.")
    dane.zones.add("real.cnta.example. IN A 127.0.0.53")
    dane.zones.add(f"_{dane.port}._tcp.real.cnta.example. IN TLSA 2 0 1 {cert_sha256(dane.ca.cert)}")
    dane.sendmail("-f", JOE, "far@cn.example")
    dane.sendmail("-f", JOE, "far@cnta.example")
    dane.start()
    wait_empty(dane)
    assert len(sink.messages) == 1 and len(ta.messages) == 1
    assert len(re.findall(r" delivered .* tls=dane$", dane.queued.log_text(), re.M)) == 2, dane.queued.log_text()


def test_dane_ee_ignores_the_certificate_dates(dane, tmp_path):
    # DANE-EE pins the key: an expired self-signed certificate still matches (RFC 7672 3.1.1)
    import datetime
    import ssl
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "expired.other")])
    start = datetime.datetime(2020, 1, 1)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=30)).sign(key, hashes.SHA256()))
    pem, key_pem = str(tmp_path / "expired.pem"), str(tmp_path / "expired.key")
    open(pem, "wb").write(cert.public_bytes(serialization.Encoding.PEM))
    open(key_pem, "wb").write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pem, key_pem)
    sink = Sink("127.0.0.54", dane.port, tls=ctx)
    dane.sinks["127.0.0.54"] = sink
    dane.zones.mx("old.example", "127.0.0.54", dane.port, f"3 1 1 {spki_sha256(pem)}")
    dane.sendmail("-f", JOE, "far@old.example")
    dane.start()
    wait_empty(dane)
    assert len(sink.messages) == 1
    assert_secured_by(dane, "dane")


def test_dane_requires_starttls(dane):
    sink = dane.dane_sink("127.0.0.44")  # no STARTTLS
    dane.zones.mx("notls.example", "127.0.0.44", dane.port, f"3 1 1 {'ab' * 32}")
    dane.sendmail("-f", JOE, "far@notls.example")
    dane.start()
    e = attempted(dane)
    assert e["state"] == "deferred" and "STARTTLS" in e["last_error"], e["last_error"]
    assert sink.messages == []


def test_bogus_tlsa_defers(dane):
    sink = dane.dane_sink("127.0.0.45", cert="mx.bogus.example")
    dane.zones.mx("bogus.example", "127.0.0.45", dane.port, f"3 1 1 {spki_sha256(dane.pem('mx.bogus.example'))}")
    dane.zones.bogus.append(f"_{dane.port}._tcp.mx.bogus.example.")
    dane.sendmail("-f", JOE, "far@bogus.example")
    dane.start()
    e = attempted(dane)
    assert e["state"] == "deferred" and "bogus" in e["last_error"], e["last_error"]
    assert sink.messages == []


def test_unsigned_zone_falls_back_to_opportunistic_tls(dane):
    # TLSA in an unsigned zone does not count: the wrong certificate is taken
    sink = dane.dane_sink("127.0.0.46", cert="whatever.other")
    dane.zones.mx("plain.nosig", "127.0.0.46", dane.port, f"3 1 1 {'ab' * 32}")
    dane.sendmail("-f", JOE, "far@plain.nosig")
    dane.start()
    wait_empty(dane)
    assert len(sink.messages) == 1 and sink.messages[0][4]
    assert_secured_by(dane, "unverified")


def test_insecure_mx_answer_ignores_signed_tlsa(dane):
    # MX from the unsigned zone naming a host with (mismatching) secure TLSA: no DANE (RFC 7672 2.2)
    sink = dane.dane_sink("127.0.0.47", cert="whatever.other")
    dane.zones.add("mixed.nosig. IN MX 10 mx.signed.example.")
    dane.zones.add("mx.signed.example. IN A 127.0.0.47")
    dane.zones.add(f"_{dane.port}._tcp.mx.signed.example. IN TLSA 3 1 1 {'ab' * 32}")
    dane.sendmail("-f", JOE, "far@mixed.nosig")
    dane.start()
    wait_empty(dane)
    assert len(sink.messages) == 1
    assert_secured_by(dane, "unverified")


@pytest.mark.parametrize("tlsa", [True, False])
def test_dane_wins_over_mta_sts(dane, tlsa):
    # an enforce policy naming no MX host defers (without TLSA: the control);
    # with TLSA records DANE rules and the policy is not even fetched (RFC 8461 2)
    https_port = free_port()
    server = PolicyServer("127.0.0.50", https_port, dane.ca.issue("mta-sts.both.example"),
                          policy("enforce", mx=("*.other.example",)))
    try:
        sink = dane.dane_sink("127.0.0.49", cert="mx.both.example")
        digest = spki_sha256(dane.pem("mx.both.example"))
        dane.zones.mx("both.example", "127.0.0.49", dane.port, f"3 1 1 {digest}" if tlsa else None)
        dane.zones.add('_mta-sts.both.example. IN TXT "v=STSv1; id=1;"')
        dane.zones.add("mta-sts.both.example. IN A 127.0.0.50")
        dane.sendmail("-f", JOE, "far@both.example")
        dane.zones.start()
        dane.zone.port = dane.zones.port
        dane.extra_config = (f'dnssec_trust_anchor = "{dane.zones.trust_anchor}"\n'
                             f'tls_ca_file = "{dane.ca.cert}"\nmta_sts_port = {https_port}\n')
        dane.start_queued()
        if tlsa:
            wait_empty(dane)
            assert len(sink.messages) == 1 and sink.messages[0][4]
            assert server.fetches == 0
            assert_secured_by(dane, "dane")
        else:
            e = attempted(dane)
            assert "MTA-STS" in e["last_error"] and sink.messages == [] and server.fetches == 1
    finally:
        server.stop()

def test_resolver_without_dnssec_turns_dane_off(dane, tmp_path):
    # a trust anchor, but a DNS server (qstack's dnslib zone) that knows nothing of
    # DNSSEC: every answer would be bogus, so DANE goes off instead of deferring all mail
    sink = dane.sink("remote.example", "127.0.0.51")
    key = subprocess.run(["ldns-keygen", "-a", "ECDSAP256SHA256", "-k", "example."], cwd=str(tmp_path),
                         stdout=subprocess.PIPE, check=True).stdout.decode().strip()
    anchor = str(tmp_path / (key + ".ds"))
    os.chmod(anchor, 0o644)
    dane.extra_config = f'dnssec_trust_anchor = "{anchor}"\n'
    dane.sendmail("-f", JOE, "far@remote.example")
    dane.start_queued()
    wait_empty(dane)
    assert len(sink.messages) == 1
    assert re.search(r"DANE is off for \d+ s: the resolver does not validate", dane.queued.log_text())

def test_dane_is_asked_again_after_the_anchor_could_not_be_read(dane):
    # the anchor unreadable at the first delivery turns DANE off for
    # queue.dane_recheck_s, not for good: once readable, DANE applies again
    sink = dane.dane_sink("127.0.0.55", cert="not-the-mx-name.other")
    dane.zones.mx("again.example", "127.0.0.55", dane.port,
                  f"3 1 1 {spki_sha256(dane.pem('not-the-mx-name.other'))}")
    dane.zones.start()
    dane.zone.port = dane.zones.port
    dane.extra_config = f'dnssec_trust_anchor = "{dane.zones.trust_anchor}"\ndane_recheck_s = 1\n'
    dane.start_queued()
    # readable at start (else DANE stays off until a restart), unreadable at the first delivery
    wait_for(lambda: "delivering" in dane.queued.log_text(), what="mail-queued running")
    os.chmod(dane.zones.trust_anchor, 0)
    dane.sendmail("-f", JOE, "far@again.example")
    wait_empty(dane)
    os.chmod(dane.zones.trust_anchor, 0o644)
    time.sleep(1.2)
    dane.sendmail("-f", JOE, "far@again.example")
    wait_empty(dane)
    log = dane.queued.log_text()
    assert len(sink.messages) == 2
    assert re.search(r"DANE is off for 1 s: cannot read .*trust-anchor.ds", log), log
    assert "DANE is on again" in log, log
    delivered = re.findall(r" delivered .* tls=(\w+)$", log, re.M)
    assert delivered == ["unverified", "dane"], log


def test_tls_report_of_the_day_reaches_the_rua_mailbox(dane):
    import gzip
    import json
    import email
    import time
    sink = dane.dane_sink("127.0.0.48", cert="mx.rpt.example")
    dane.zones.mx("rpt.example", "127.0.0.48", dane.port, f"3 1 1 {spki_sha256(dane.pem('mx.rpt.example'))}")
    dane.zones.add(f'_smtp._tls.rpt.example. IN TXT "v=TLSRPTv1; rua=mailto:{JOE}"')
    dane.sendmail("-f", JOE, "far@rpt.example")
    dane.start()
    wait_empty(dane)
    assert len(sink.messages) == 1
    assert_secured_by(dane, "dane")  # what the report counts
    with open(dane.config, "a") as f:  # mailctl looks the rua up through [auth] resolver
        f.write(f'[auth]\nresolver = "127.0.0.1@{dane.zones.port}"\n')
    today = time.strftime("%Y-%m-%d", time.gmtime())
    r = dane.mailctl("--config", dane.config, "--format", "json", "tls-report", "send", "--date", today)
    out = json.loads(r.stdout)
    assert [(x["domain"], x["to"], x["result"]) for x in out["reports"]] == [("rpt.example", JOE, "sent")], out
    msgs = [email.message_from_bytes(m) for m in dane.inbox()]
    reports = [m for m in msgs if m["TLS-Report-Domain"] == "rpt.example"]
    assert len(reports) == 1
    m = reports[0]
    assert m.get_content_type() == "multipart/report" and m.get_param("report-type") == "tlsrpt"
    assert m["TLS-Report-Submitter"] == "mx.example.com"
    part = [p for p in m.walk() if p.get_content_type() == "application/tlsrpt+gzip"][0]
    assert part.get_filename().startswith("mx.example.com!rpt.example!")
    report = json.loads(gzip.decompress(part.get_payload(decode=True)))
    policy = report["policies"][0]
    assert policy["policy"] == {"policy-type": "tlsa", "policy-domain": "rpt.example"}
    assert policy["summary"] == {"total-successful-session-count": 1, "total-failure-session-count": 0}
    assert report["date-range"]["start-datetime"] == today + "T00:00:00Z"
    # the counts sent are gone: a second run has nothing to send
    again = json.loads(dane.mailctl("--config", dane.config, "--format", "json", "tls-report", "send",
                                    "--date", today).stdout)
    assert again["reports"] == []
