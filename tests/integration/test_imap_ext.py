"""MULTIAPPEND (RFC 3502), QRESYNC (RFC 7162), REPLACE (RFC 8508) and
COMPRESS=DEFLATE (RFC 4978, also under TLS) and UTF8=ACCEPT (RFC 6855) in mail-imapd, over a raw
socket (imaplib sends neither) with imaplib checking the results."""
import re
import shutil
import socket
import ssl
import zlib

import pytest

from test_imap import (MESSAGE, USER, PASSWORD, ok, start_stack,  # noqa: F401 (fixtures)
                       datadir_for_daemons, stack)


def sync_literal(c, data):
    """Sends a synchronizing literal's marker, waits for the go-ahead, then its bytes."""
    c.send(b"{%d}\r\n" % len(data))
    assert c.line().startswith("+ ")
    c.send(data)


def test_multiappend_stores_all_or_nothing(stack, run):
    c = stack.raw(login=True)
    assert "MULTIAPPEND" in c.command("c", "CAPABILITY")[0]
    # Three messages, synchronizing literals: a continuation for each.
    c.send("m APPEND INBOX (\\Seen) ")
    sync_literal(c, MESSAGE)
    c.send(' "07-Feb-1994 21:52:25 -0800" ')
    sync_literal(c, MESSAGE.replace(b"lunch", b"dinner"))
    c.send(" (\\Flagged) ")
    sync_literal(c, MESSAGE.replace(b"lunch", b"tea"))
    c.send("\r\n")
    done = c.until("m")[-1]
    assert re.match(r"m OK \[APPENDUID \d+ 1:3\]", done), done

    m = stack.connect()
    ok(m.select("INBOX"))
    data = ok(m.fetch("1:*", "(FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
    text = b" ".join(x if isinstance(x, bytes) else b"".join(x) for x in data)
    assert text.count(b"Subject:") == 3
    assert b"lunch" in text and b"dinner" in text and b"tea" in text
    assert b"08-Feb-1994 05:52:25 +0000" in text, data  # the same instant, in UTC
    assert b"\\Seen" in text and b"\\Flagged" in text

    # The third message goes over the message quota: NO, and none of the three is stored.
    r = run("mailctl", "--data-dir", stack.datadir, "quota", "set", USER, "unlimited", "--messages", "5")
    assert r.returncode == 0, r.stderr.decode()
    lit = b"{%d+}\r\n" % len(MESSAGE) + MESSAGE
    c.send(b"q APPEND INBOX " + lit + b" " + lit + b" " + lit + b"\r\n")
    done = c.until("q")[-1]
    assert done.startswith("q NO [OVERQUOTA]") or done.startswith("q NO"), done
    assert ok(m.status("INBOX", "(MESSAGES)"))[0].endswith(b"(MESSAGES 3)")
    # Two fit.
    c.send(b"r APPEND INBOX " + lit + b" " + lit + b"\r\n")
    assert re.match(r"r OK \[APPENDUID \d+ 4:5\]", c.until("r")[-1])
    # An empty message, a bad flag, a missing mailbox: nothing stored.
    c.send(b"e APPEND Archive " + lit + b" {0+}\r\n\r\n")
    assert c.until("e")[-1].startswith("e NO")
    c.send(b"f APPEND Archive " + lit + b" (\\Bogus) " + lit + b"\r\n")
    assert c.until("f")[-1].startswith("f BAD")
    c.send(b"g APPEND Nowhere " + lit + b" " + lit + b"\r\n")
    assert c.until("g")[-1].startswith("g NO [TRYCREATE]")
    assert ok(m.status("Archive", "(MESSAGES)"))[0].endswith(b"(MESSAGES 0)")
    m.logout()
    c.close()


def highest_modseq(lines):
    for line in lines:
        hit = re.search(r"HIGHESTMODSEQ (\d+)", line)
        if hit:
            return int(hit.group(1))
    raise AssertionError(lines)


def test_qresync_select_fetch_vanished_and_live_expunges(stack):
    m = stack.connect()
    for i in range(6):
        ok(m.append("INBOX", None, None, MESSAGE.replace(b"lunch", b"lunch %d" % i)))
    c = stack.raw(login=True)
    assert "QRESYNC" in c.command("c", "CAPABILITY")[0]
    assert c.command("s", "SELECT INBOX (QRESYNC (1 1))")[-1].startswith("s BAD")  # not enabled
    assert c.command("e", "ENABLE QRESYNC")[0] == "* ENABLED QRESYNC"
    lines = c.command("s", "SELECT INBOX")
    uidvalidity = int(re.search(r"UIDVALIDITY (\d+)", "\n".join(lines)).group(1))
    modseq = highest_modseq(lines)
    c.command("x", "UNSELECT")

    # Another client expunges 2 and 4 and flags 5 while this one is away.
    ok(m.select("INBOX"))
    ok(m.uid("STORE", "2,4", "+FLAGS", "\\Deleted"))
    ok(m.expunge())
    ok(m.uid("STORE", "5", "+FLAGS", "\\Flagged"))

    lines = c.command("s", f"SELECT INBOX (QRESYNC ({uidvalidity} {modseq}))")
    assert lines[-1].startswith("s OK"), lines
    assert "* VANISHED (EARLIER) 2,4" in lines, lines
    assert any(re.match(r"\* 3 FETCH \(UID 5 FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)", x) for x in lines), lines
    # Known UIDs narrow both answers; a wrong UIDVALIDITY ignores the parameter.
    lines = c.command("s", f"EXAMINE INBOX (QRESYNC ({uidvalidity} {modseq} 1:3))")
    assert "* VANISHED (EARLIER) 2" in lines and not any("FETCH" in x for x in lines), lines
    lines = c.command("s", f"EXAMINE INBOX (QRESYNC ({uidvalidity} {modseq} 1:6 (1:4 1,3,5,6)))")
    assert "* VANISHED (EARLIER) 2,4" in lines, lines
    lines = c.command("s", f"SELECT INBOX (QRESYNC ({uidvalidity + 1} {modseq}))")
    assert lines[-1].startswith("s OK") and not any("VANISHED" in x for x in lines), lines
    assert c.command("s", "SELECT INBOX (QRESYNC (1))")[-1].startswith("s BAD")

    # UID FETCH ... (CHANGEDSINCE n VANISHED).
    lines = c.command("f", f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")
    assert lines[0] == "* VANISHED (EARLIER) 2,4", lines
    assert re.match(r"\* 3 FETCH \(UID 5 FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)", lines[1]), lines
    assert c.command("f", f"FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")[-1].startswith("f BAD")
    assert c.command("f", "UID FETCH 1:* (FLAGS) (VANISHED)")[-1].startswith("f BAD")

    # Live expunges by another client arrive as VANISHED, never EXPUNGE (also after MOVE).
    ok(m.uid("STORE", "1", "+FLAGS", "\\Deleted"))
    ok(m.expunge())
    lines = c.command("n", "NOOP")
    assert "* VANISHED 1" in lines and not any("EXPUNGE" in x for x in lines), lines
    lines = c.command("v", "UID MOVE 3 Archive")
    assert "* VANISHED 3" in lines and not any("EXPUNGE" in x for x in lines), lines
    # ... and in IDLE.
    c.send("i IDLE\r\n")
    assert c.line().startswith("+ ")
    ok(m.uid("STORE", "6", "+FLAGS", "\\Deleted"))
    ok(m.expunge())
    line = c.line()
    while line.startswith("* 2 FETCH"):  # the \Deleted flag first
        line = c.line()
    assert line == "* VANISHED 6"
    c.send("DONE\r\n")
    assert c.until("i")[-1].startswith("i OK")
    m.logout()
    c.close()


def test_replace_draft(stack):
    m = stack.connect()
    ok(m.append("Drafts", "(\\Draft)", None, MESSAGE))
    c = stack.raw(login=True)
    assert " REPLACE " in c.command("c", "CAPABILITY")[0]
    c.command("s", "SELECT Drafts")
    new = MESSAGE.replace(b"lunch", b"brunch")
    c.send(b"r UID REPLACE 1 Drafts (\\Draft \\Seen) {%d}\r\n" % len(new))
    assert c.line().startswith("+ ")
    c.send(new + b"\r\n")
    lines = c.until("r")
    assert re.match(r"\* OK \[APPENDUID \d+ 2\]", lines[0]), lines
    assert lines[1:3] == ["* 1 EXPUNGE", "* 1 EXISTS"] and lines[-1] == "r OK REPLACE completed", lines
    # A failed append keeps the original.
    c.send(b"n REPLACE 1 Nowhere {%d+}\r\n" % len(new) + new + b"\r\n")
    assert c.until("n")[-1].startswith("n NO [TRYCREATE]")
    ok(m.select("Drafts"))
    typ, data = m.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert len([x for x in data if isinstance(x, tuple)]) == 1, data
    assert b"brunch" in data[0][1] and b"\\Seen" in data[0][0], data
    m.logout()
    c.close()


class Deflated:
    """An IMAP connection speaking raw DEFLATE both ways after COMPRESS, over
    any socket (plain or TLS)."""

    def __init__(self, sock):
        self.sock = sock
        self.z_out = zlib.compressobj(wbits=-15)
        self.z_in = zlib.decompressobj(wbits=-15)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(self.z_out.compress(data) + self.z_out.flush(zlib.Z_SYNC_FLUSH))

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(repr(self.buf))
            self.buf += self.z_in.decompress(chunk)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def command(self, tag, text):
        self.send(b"%s %s\r\n" % (tag, text))
        lines = []
        while not lines or not lines[-1].startswith(tag + b" "):
            lines.append(self.line())
        return lines


def plain_line(sock):
    data = b""
    while not data.endswith(b"\r\n"):
        data += sock.recv(1)
    return data[:-2]


def compressed_session(sock):
    """Greeting, LOGIN and COMPRESS in the clear (of compression), then a
    compressed exchange that moves a big message both ways."""
    assert b"COMPRESS=DEFLATE" not in plain_line(sock)  # offered after login
    sock.sendall(b'a LOGIN "%s" "%s"\r\n' % (USER.encode(), PASSWORD.encode()))
    line = plain_line(sock)
    assert line.startswith(b"a OK") and b"COMPRESS=DEFLATE" in line, line
    sock.sendall(b"z COMPRESS DEFLATE\r\n")
    assert plain_line(sock) == b"z OK DEFLATE active"
    d = Deflated(sock)
    assert d.command(b"y", b"COMPRESS DEFLATE")[-1].startswith(b"y NO [COMPRESSIONACTIVE]")
    big = MESSAGE + b"padding padding padding\r\n" * 20000
    d.send(b"b APPEND INBOX {%d+}\r\n" % len(big) + big + b"\r\n")
    lines = [d.line()]
    while not lines[-1].startswith(b"b "):
        lines.append(d.line())
    assert lines[-1].startswith(b"b OK [APPENDUID"), lines
    assert d.command(b"s", b"SELECT INBOX")[-1].startswith(b"s OK")
    d.send(b"f FETCH * BODY.PEEK[]\r\n")
    head = d.line()
    size = int(re.search(rb"\{(\d+)\}$", head).group(1))
    assert size == len(big)
    while len(d.buf) < size:
        d.buf += d.z_in.decompress(sock.recv(65536))
    assert d.buf[:size] == big
    d.buf = d.buf[size:]
    assert d.line() == b")"
    assert d.line().startswith(b"f OK")
    assert d.command(b"l", b"LOGOUT")[-1].startswith(b"l OK")


def test_compress_deflate(stack):
    sock = socket.create_connection(("127.0.0.1", stack.port), timeout=10)
    compressed_session(sock)
    sock.close()
    # Garbage instead of a DEFLATE stream ends the connection, not the daemon.
    sock = socket.create_connection(("127.0.0.1", stack.port), timeout=10)
    plain_line(sock)
    sock.sendall(b'a LOGIN "%s" "%s"\r\nz COMPRESS DEFLATE\r\n' % (USER.encode(), PASSWORD.encode()))
    plain_line(sock)
    assert plain_line(sock) == b"z OK DEFLATE active"
    sock.sendall(b"\xff" * 64)
    assert sock.recv(100) == b""
    sock.close()
    c = stack.raw(login=True)
    assert c.command("z", "COMPRESS LZW")[-1].startswith("z BAD")
    assert c.command("z", "COMPRESS")[-1].startswith("z BAD")
    c.close()
    c = stack.raw()
    assert c.command("z", "COMPRESS DEFLATE")[-1].startswith("z BAD")  # log in first
    c.close()


def peak_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("VmHWM:")).split()[1])


def test_compressed_line_bomb_is_refused_without_inflating_it_whole(stack):
    """200 MB of one line compress to ~200 KB: the line limit must see the
    inflated bytes step by step, not after the daemon has inflated them all."""
    sock = socket.create_connection(("127.0.0.1", stack.port), timeout=30)
    plain_line(sock)
    sock.sendall(b'a LOGIN "%s" "%s"\r\nz COMPRESS DEFLATE\r\n' % (USER.encode(), PASSWORD.encode()))
    plain_line(sock)
    assert plain_line(sock) == b"z OK DEFLATE active"
    before = peak_rss_kb(stack.imapd.pid)
    z = zlib.compressobj(wbits=-15)
    bomb = z.compress(b"a" * (200 << 20)) + z.flush(zlib.Z_SYNC_FLUSH)
    try:
        sock.sendall(bomb)
        d = zlib.decompressobj(wbits=-15)
        data = b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += d.decompress(chunk)
        assert b"* BYE line too long" in data
    except ConnectionResetError:
        pass  # closed with our bytes unread: the BYE may be lost, the refusal is not
    sock.close()
    assert stack.imapd.alive(), stack.imapd.log_text()
    assert peak_rss_kb(stack.imapd.pid) - before < 64 * 1024
    c = stack.raw(login=True)  # still serving
    c.close()


def test_compress_deflate_under_tls(datadir_for_daemons, tmp_path, daemons, run):
    if not shutil.which("openssl"):
        pytest.skip("no openssl command to make a test certificate")
    s = start_stack(datadir_for_daemons, tmp_path, daemons, run, tls=True)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", s.tls_port), timeout=10))
    compressed_session(sock)
    sock.close()
    assert s.imapd.alive(), s.imapd.log_text()


def test_utf8_accept_and_modified_utf7_names(stack):
    m = stack.connect()  # imaplib speaks IMAP4rev1: modified UTF-7 names
    ok(m.create('"Entw&APw-rfe"'))
    ok(m.append('"Entw&APw-rfe"', None, None, MESSAGE))
    assert any(b'"Entw&APw-rfe"' in x for x in ok(m.list('""', "Entw*")))
    c = stack.raw(login=True)
    assert "UTF8=ACCEPT" in c.command("c", "CAPABILITY")[0]
    assert c.command("e", "ENABLE UTF8=ACCEPT")[0] == "* ENABLED UTF8=ACCEPT"
    # Names with 8-bit characters come as literals (RawClient joins nothing).
    lines = c.command("l", 'LIST "" Entw*')
    assert lines[:2] == ['* LIST (\\HasNoChildren) "/" {9}', "Entwürfe"], lines
    c.send('s STATUS "Entwürfe" (MESSAGES)\r\n'.encode())
    assert c.until("s")[:2] == ["* STATUS {9}", "Entwürfe (MESSAGES 1)"]
    # An APPEND of a UTF-8 message with the UTF8 data item (literal8).
    body = "From: Jörg <j@example.com>\r\nSubject: Grüße\r\n\r\nHallo\r\n".encode()
    c.send(b'u APPEND "Entw\xc3\xbcrfe" UTF8 (~{%d+}\r\n' % len(body) + body + b")\r\n")
    assert c.until("u")[-1].startswith("u OK [APPENDUID")
    assert ok(m.status('"Entw&APw-rfe"', "(MESSAGES)"))[0].endswith(b"(MESSAGES 2)")
    m.logout()
    c.close()
