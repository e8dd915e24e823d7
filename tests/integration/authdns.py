"""A DNS server on 127.0.0.1 for the mail authentication tests (Debian python3-dnslib):
TXT records (SPF, DKIM keys, DMARC policies) and A records from a dict, NXDOMAIN
for names it does not know, SERVFAIL or a late answer for names marked so. UDP and TCP, on a free port, in threads."""
import socket
import time

from dnslib import QTYPE, RCODE, RR, TXT, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer


def txt_rdata(text):
    # Character-strings of at most 255 bytes (DKIM RSA keys are longer).
    data = text.encode()
    return TXT([data[i:i + 255] for i in range(0, len(data), 255)] or [b""])


class ZoneResolver(BaseResolver):
    def __init__(self, records):
        self.records = records  # {(name, "TXT"|"A"): [value, ...]}

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        if (name, "SLOW") in self.records:  # a server that does not answer in time
            time.sleep(self.records[(name, "SLOW")])
        if (name, "SERVFAIL") in self.records:  # a server failing for now
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        qtype = QTYPE[request.q.qtype]
        values = self.records.get((name, qtype))
        if values:
            for v in values:
                rdata = txt_rdata(v) if qtype == "TXT" else A(v)
                reply.add_answer(RR(request.q.qname, request.q.qtype, rdata=rdata, ttl=1))
        elif not any(n == name for n, _ in self.records):
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


class LocalDns:
    def __init__(self, records):
        self.records = records
        resolver = ZoneResolver(records)
        quiet = DNSLogger("-send,-recv,-request,-reply,-truncated,-data,-error")
        # One port for both transports: bind UDP first, then TCP on the same number.
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            try:
                self.udp = DNSServer(resolver, address="127.0.0.1", port=port, logger=quiet)
                self.tcp = DNSServer(resolver, address="127.0.0.1", port=port, tcp=True, logger=quiet)
                break
            except OSError:
                continue
        self.port = port
        self.udp.start_thread()
        self.tcp.start_thread()

    @property
    def address(self):
        return f"127.0.0.1@{self.port}"

    def stop(self):
        self.udp.stop()
        self.tcp.stop()
