"""mail-imapd with real clients: Python's imaplib and a raw socket for IDLE and
malformed input. The store is served by mail-stored when it is built (else
mail-imapd opens it directly); accounts are provisioned with mailctl."""
import base64
import hashlib
import hmac
import imaplib
import os
import shutil
import socket
import ssl
import time
import warnings

import pytest

from conftest import BIN_DIR, LineConn, binary, free_port, hand_over, make_cert, port_open, start_stored, wait_for

USER = "joe@example.com"
PASSWORD = "correct horse"
OTHER = "ann@example.com"

MESSAGE = (b"From: Ann Example <ann@example.com>\r\n"
           b"To: Joe <joe@example.com>\r\n"
           b"Subject: lunch plans\r\n"
           b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
           b"Message-ID: <lunch@example.com>\r\n"
           b"\r\n"
           b"Shall we meet at noon?\r\n")


class Stack:
    def __init__(self, datadir, port, imapd, stored):
        self.datadir = datadir
        self.port = port
        self.imapd = imapd
        self.stored = stored

    def connect(self, login=True, user=USER, password=PASSWORD):
        m = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        if login:
            m.login(user, password)
        return m

    def raw(self, login=False):
        """A line-level connection; logged in as the test user when `login`."""
        c = RawClient(self.port)
        if login:
            c.login()
        return c


class RawClient(LineConn):
    """A line-level IMAP connection for what imaplib cannot express."""

    def __init__(self, port):
        super().__init__(socket.create_connection(("127.0.0.1", port), timeout=10))
        self.greeting = self.line()

    def command(self, tag, text):
        """Sends `tag text` and returns every line up to the tagged answer."""
        self.send(f"{tag} {text}\r\n")
        return self.until(tag)

    def until(self, tag, timeout=10):
        lines = []
        while True:
            line = self.line(timeout)
            lines.append(line)
            if line.startswith(tag + " "):
                return lines

    def login(self, tag="a", user=USER, password=PASSWORD):
        assert self.command(tag, f'LOGIN "{user}" "{password}"')[-1].startswith(tag + " OK")

    def close(self):
        self.sock.close()


def provision(run, datadir, *extra):
    for args in (["domain", "add", "example.com"],):
        r = run("mailctl", "--data-dir", datadir, *extra, *args)
        assert r.returncode == 0, r.stderr.decode()
    for user in (USER, OTHER):
        r = run("mailctl", "--data-dir", datadir, *extra, "account", "add", user, "--password-stdin",
                input=PASSWORD + "\n")
        assert r.returncode == 0, r.stderr.decode()


@pytest.fixture
def datadir_for_daemons(daemon_datadir):
    """The name the IMAP tests know conftest's daemon_datadir by."""
    return daemon_datadir


def start_stack(datadir, tmp_path, daemons, run, tls=False):
    imapd = binary("mail-imapd")
    binary("mailctl")
    stored = None
    hand_over(datadir)
    if os.path.exists(os.path.join(BIN_DIR, "mail-stored")):
        stored = start_stored(daemons, datadir, tmp_path / "stored.log")
        provision(run, datadir)
    else:
        # No daemon yet: provision offline, then mail-imapd opens the store itself.
        provision(run, datadir, "--offline")
    if tls:
        assert make_cert(datadir)
    hand_over(datadir)
    port = free_port()
    argv = [imapd, "--data-dir", datadir, "--listen", f"imap=127.0.0.1:{port}"]
    tls_port = None
    if tls:
        tls_port = free_port()
        argv += ["--listen", f"imaps=127.0.0.1:{tls_port}"]
    d = daemons.start(argv, log=str(tmp_path / "imapd.log"))
    wait_for(lambda: port_open(port) or not d.alive(), what="mail-imapd port")
    assert d.alive(), d.log_text()
    s = Stack(datadir, port, d, stored)
    s.tls_port = tls_port
    return s


@pytest.fixture
def stack(datadir_for_daemons, tmp_path, daemons, run):
    s = start_stack(datadir_for_daemons, tmp_path, daemons, run)
    yield s
    assert s.imapd.alive(), "mail-imapd died:\n" + s.imapd.log_text()
    rc = s.imapd.stop()
    log = s.imapd.log_text()
    assert "Sanitizer" not in log and "runtime error" not in log, log
    assert rc == 0, f"mail-imapd exited with {rc}:\n{log}"


def ok(result):
    typ, data = result
    assert typ == "OK", data
    return data


def test_login_list_select(stack):
    m = stack.connect(login=False)
    assert "IMAP4REV2" in m.capabilities and "AUTH=PLAIN" in m.capabilities
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        m.login(USER, "wrong password")
    ok(m.login(USER, PASSWORD))
    names = b"\n".join(ok(m.list()))
    for box in (b'"INBOX"', b'"Sent"', b'"Drafts"', b'"Trash"', b'"Junk"', b'"Archive"'):
        assert box in names
    assert b"\\Sent" in names and b"\\Trash" in names
    assert ok(m.select("INBOX")) == [b"0"]
    ok(m.create("Projects/2024"))
    assert b'"Projects/2024"' in b"\n".join(ok(m.list('""', "Projects/*")))
    ok(m.rename("Projects", "Work"))
    assert b'"Work/2024"' in b"\n".join(ok(m.list('""', "Work/*")))
    ok(m.subscribe("Work"))
    assert b'"Work"' in b"\n".join(ok(m.lsub()))
    typ, data = m.status("INBOX", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)")
    assert typ == "OK" and b"MESSAGES 0" in data[0]
    m.logout()
    # Through mail-stored when it is built, else directly.
    backend = "(remote" if stack.stored else "(rocksdb)"
    assert backend in stack.imapd.log_text()


def test_append_fetch_store_search(stack):
    m = stack.connect()
    typ, data = m.append("INBOX", "(\\Flagged)", None, MESSAGE)
    assert typ == "OK" and b"APPENDUID" in data[0]
    ok(m.append("INBOX", None, imaplib.Time2Internaldate(time.time()),
                MESSAGE.replace(b"lunch plans", b"dinner plans")))
    assert ok(m.select("INBOX")) == [b"2"]

    data = ok(m.fetch("1", "(FLAGS RFC822.SIZE ENVELOPE BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
    head, body = data[0]
    assert b"FLAGS (\\Recent \\Flagged)" in head  # IMAP4rev1: new to this session
    assert b"RFC822.SIZE %d" % len(MESSAGE) in head
    assert b'"lunch plans"' in head
    assert body == b"Subject: lunch plans\r\n\r\n"

    data = ok(m.fetch("1", "(BODY[])"))
    assert data[0][1] == MESSAGE
    assert b"\\Seen" in b"".join(x if isinstance(x, bytes) else x[0] for x in data)
    data = ok(m.fetch("2", "(BODYSTRUCTURE)"))
    assert b'("text" "plain"' in data[0]

    ok(m.store("2", "+FLAGS", "(\\Answered $Work)"))
    data = ok(m.fetch("2", "(FLAGS)"))
    assert b"\\Answered" in data[0] and b"$Work" in data[0]
    ok(m.store("2", "-FLAGS", "($Work)"))

    assert ok(m.search(None, "SUBJECT", "lunch")) == [b"1"]
    assert ok(m.search(None, "UNSEEN")) == [b"2"]
    assert ok(m.search(None, "BODY", "noon")) == [b"1 2"]
    assert ok(m.search(None, "OR", "ANSWERED", "FLAGGED")) == [b"1 2"]
    assert ok(m.uid("SEARCH", "SUBJECT", "dinner")) == [b"2"]
    assert ok(m.search(None, "FROM", "nobody")) == [b""]
    m.logout()


def test_copy_move_expunge(stack):
    m = stack.connect()
    for i in range(3):
        ok(m.append("INBOX", None, None, MESSAGE.replace(b"lunch", b"lunch %d" % i)))
    ok(m.select("INBOX"))
    typ, data = m.copy("1:2", "Archive")
    assert typ == "OK" and b"COPYUID" in data[0], data
    typ, data = m.copy("1", "Nowhere")
    assert typ == "NO" and b"TRYCREATE" in data[0]
    typ, data = m.uid("MOVE", "2", "Trash")
    assert typ == "OK", data
    assert m.untagged_responses.get("EXPUNGE") or True
    ok(m.store("1", "+FLAGS", "(\\Deleted)"))
    ok(m.expunge())
    # One left in INBOX: the third message.
    data = ok(m.fetch("1:*", "(UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
    subjects = [x[1] for x in data if isinstance(x, tuple)]
    assert subjects == [b"Subject: lunch 2 plans\r\n\r\n"]
    assert b"MESSAGES 2" in m.status("Archive", "(MESSAGES)")[1][0]
    assert b"MESSAGES 1" in m.status("Trash", "(MESSAGES)")[1][0]
    ok(m.select("Trash"))
    data = ok(m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
    assert data[0][1] == b"Subject: lunch 1 plans\r\n\r\n"
    m.logout()


def test_idle_sees_append_from_second_connection(stack):
    idler = stack.raw(login=True)
    assert idler.command("b", "SELECT INBOX")[-1].startswith("b OK")
    idler.send("c IDLE\r\n")
    assert idler.line().startswith("+ ")

    other = stack.connect()
    start = time.monotonic()
    ok(other.append("INBOX", None, None, MESSAGE))
    line = idler.line(timeout=5)
    latency = time.monotonic() - start
    assert line == "* 1 EXISTS"
    assert latency < 2.0, f"IDLE push took {latency:.3f}s"

    ok(other.select("INBOX"))
    ok(other.store("1", "+FLAGS", "(\\Flagged)"))
    line = idler.line(timeout=5)
    if line.endswith(" RECENT"):  # IMAP4rev1: the new message is \Recent here
        line = idler.line(timeout=5)
    assert "FLAGS (\\Recent \\Flagged)" in line

    idler.send("DONE\r\n")
    assert idler.until("c")[-1].startswith("c OK")
    assert idler.command("d", "LOGOUT")[-1].startswith("d OK")
    idler.close()
    other.logout()


def test_bad_commands_get_bad_or_no(stack):
    c = stack.raw()
    assert c.greeting.startswith("* OK")
    assert c.command("a1", "FROBNICATE")[-1].startswith("a1 BAD")
    assert c.command("a2", "SELECT INBOX")[-1].startswith("a2 BAD")  # not logged in
    assert c.command("a3", "LOGIN")[-1].startswith("a3 BAD")
    c.send("\r\n")
    assert c.line().startswith("* BAD")
    c.login("a4")
    assert c.command("a5", "FETCH 1 FLAGS")[-1].startswith("a5 BAD")  # nothing selected
    assert c.command("a6", "SELECT Nowhere")[-1].startswith("a6 NO")
    assert c.command("a7", "SELECT INBOX")[-1].startswith("a7 OK")
    for bad in ("FETCH 1:* (FLAGS", "FETCH 0 FLAGS", "FETCH 5 FLAGS", "STORE 1 +FLAGS (\\Bogus)",
                "SEARCH FROB", "SEARCH ((((((((((((((((((((((((((((((((((ALL", "UID FROB 1",
                'APPEND INBOX "bad date" {3+}\r\nabc', "COPY 1", "LIST", "STATUS INBOX (NOPE)",
                "FETCH 1 BODY[1.2.3.X]", "CREATE \"\""):
        lines = c.command("b", bad)
        assert lines[-1].startswith(("b BAD", "b NO")), (bad, lines)
    # A synchronizing literal that is too large is refused; the connection stays usable.
    c.send("c APPEND INBOX {999999999999}\r\n")
    assert c.line().startswith("c NO")
    # An overlong line ends the connection, but not the server.
    c.send("d " + "x" * 70000 + "\r\n")
    with pytest.raises((EOFError, ConnectionError, socket.timeout)):
        while True:
            c.line(timeout=5)
    c.close()
    m = stack.connect()
    ok(m.noop())
    m.logout()


def scram_client(user, password):
    """A SCRAM-SHA-256 client (RFC 5802) as an imaplib authobject."""
    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = f"n={user},r={nonce}"
    state = {}

    def step(challenge):
        if "server_first" not in state:
            if not challenge:
                return ("n,," + first_bare).encode()
        if "server_first" not in state:
            server_first = challenge.decode()
            state["server_first"] = server_first
            attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
            assert attrs["r"].startswith(nonce)
            salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]),
                                         int(attrs["i"]))
            client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
            stored_key = hashlib.sha256(client_key).digest()
            final_bare = f"c=biws,r={attrs['r']}"
            auth_message = f"{first_bare},{server_first},{final_bare}".encode()
            signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
            proof = bytes(a ^ b for a, b in zip(client_key, signature))
            server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
            state["server_signature"] = hmac.new(server_key, auth_message, hashlib.sha256).digest()
            return f"{final_bare},p={base64.b64encode(proof).decode()}".encode()
        # server-final: check the server's signature, then answer empty.
        assert challenge.decode() == "v=" + base64.b64encode(state["server_signature"]).decode()
        state["verified"] = True
        return b""

    step.state = state
    return step


def test_authenticate_plain_and_scram(stack):
    m = stack.connect(login=False)
    assert "AUTH=SCRAM-SHA-256" in m.capabilities
    ok(m.authenticate("PLAIN", lambda _: f"\0{USER}\0{PASSWORD}".encode()))
    m.logout()

    m = stack.connect(login=False)
    client = scram_client(USER, PASSWORD)
    ok(m.authenticate("SCRAM-SHA-256", client))
    assert client.state.get("verified")
    ok(m.select("INBOX"))
    m.logout()

    m = stack.connect(login=False)
    with pytest.raises(imaplib.IMAP4.error):
        m.authenticate("SCRAM-SHA-256", scram_client(USER, "wrong"))
    m.shutdown()


def test_starttls_and_implicit_tls(datadir_for_daemons, tmp_path, daemons, run):
    if not shutil.which("openssl"):
        pytest.skip("no openssl command to make a test certificate")
    s = start_stack(datadir_for_daemons, tmp_path, daemons, run, tls=True)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2

    m = s.connect(login=False)
    assert "STARTTLS" in m.capabilities
    ok(m.starttls(ssl_context=ctx))
    ok(m.login(USER, PASSWORD))
    ok(m.select("INBOX"))
    m.logout()

    m = imaplib.IMAP4_SSL("127.0.0.1", s.tls_port, ssl_context=ctx, timeout=10)
    assert "STARTTLS" not in m.capabilities
    ok(m.login(USER, PASSWORD))
    m.logout()

    # TLS 1.1 and older are refused.
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            old.maximum_version = ssl.TLSVersion.TLSv1_1
            old.minimum_version = ssl.TLSVersion.TLSv1
    except (ValueError, AttributeError):
        return
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        imaplib.IMAP4_SSL("127.0.0.1", s.tls_port, ssl_context=old, timeout=10)
    assert s.imapd.alive(), s.imapd.log_text()


def uid_set(text):
    """The UIDs of a sequence set such as 1:3,7."""
    out = []
    for part in text.split(","):
        lo, _, hi = part.partition(":")
        out += range(int(lo), int(hi or lo) + 1)
    return out


def test_concurrent_clients_agree(stack):
    """Six clients append, flag, expunge and move on one INBOX at once while
    two others IDLE (one classic, one UIDONLY); afterwards every client's view
    (sequence numbers, UIDs, flags) is the store's, and both IDLE streams'
    EXISTS/EXPUNGE/VANISHED kept count."""
    import random
    import re
    import threading

    def idle_client(*enable):
        c = stack.raw(login=True)
        if enable:
            assert c.command("e", "ENABLE " + " ".join(enable))[-1].startswith("e OK")
        lines = c.command("b", "SELECT INBOX")
        c.count = next(int(l.split()[1]) for l in lines if l.endswith(" EXISTS"))
        c.send("c IDLE\r\n")
        assert c.line().startswith("+ ")
        return c

    def follow(c, line):
        """Keeps c.count by the IDLE stream's EXISTS, EXPUNGE and VANISHED."""
        if line.endswith(" EXPUNGE"):
            n = int(line.split()[1])
            assert 1 <= n <= c.count, (line, c.count)
            c.count -= 1
        elif line.startswith("* VANISHED "):
            gone = uid_set(line.split()[2])
            assert len(gone) <= c.count, (line, c.count)
            c.count -= len(gone)
        elif line.endswith(" EXISTS"):
            n = int(line.split()[1])
            assert n >= c.count, (line, c.count)
            c.count = n
        else:
            assert (" FETCH (" in line or " UIDFETCH (" in line or line.endswith(" RECENT")
                    or line.startswith("* OK")), line

    idler = idle_client()
    uidonly = idle_client("IMAP4rev2", "UIDONLY")
    idlers = (idler, uidonly)
    errors = []
    workers = {}

    def worker(seed):
        rnd = random.Random(seed)
        try:
            m = stack.connect()
            workers[seed] = m
            ok(m.select("INBOX"))
            for i in range(25):
                op = rnd.random()
                if op < 0.4:
                    ok(m.append("INBOX", None, None, MESSAGE.replace(b"lunch", b"w%d-%d" % (seed, i))))
                uids = ok(m.uid("SEARCH", "ALL"))[0].split()
                if not uids:
                    continue
                uid = rnd.choice(uids).decode()
                if op < 0.7:
                    flag = rnd.choice(["\\Seen", "\\Flagged", "\\Answered", "$Work"])
                    ok(m.uid("STORE", uid, rnd.choice(["+FLAGS", "-FLAGS"]), f"({flag})"))
                elif op < 0.8:
                    ok(m.uid("STORE", uid, "+FLAGS.SILENT", "(\\Deleted)"))
                    ok(m.uid("EXPUNGE", uid))
                elif op < 0.87:
                    ok(m.uid("MOVE", uid, "Archive"))  # a moved message is expunged here
                else:
                    ok(m.noop())
            ok(m.noop())
        except Exception as e:  # reported by the main thread
            errors.append(f"worker {seed}: {e!r}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    # Follow both IDLE streams meanwhile.
    while any(t.is_alive() for t in threads):
        for c in idlers:
            try:
                follow(c, c.line(timeout=0.1))
            except socket.timeout:
                pass
    for t in threads:
        t.join()
    assert not errors, errors
    for c in idlers:
        c.send("DONE\r\n")
        for line in c.until("c"):
            if line.startswith("* "):
                follow(c, line)

    def view_of_raw(client, tag):
        rows = []
        for line in client.command(tag, "FETCH 1:* (UID FLAGS)"):
            mo = re.match(r"\* (\d+) FETCH \(UID (\d+) FLAGS \(([^)]*)\)\)", line)
            if mo:
                # \Recent belongs to one session only.
                flags = [f for f in mo.group(3).split() if f != "\\Recent"]
                rows.append((int(mo.group(1)), int(mo.group(2)), tuple(sorted(flags))))
        return rows

    def uid_view_of_raw(client, tag):
        rows = []
        for line in client.command(tag, "UID FETCH 1:* (FLAGS)"):
            mo = re.match(r"\* (\d+) UIDFETCH \(FLAGS \(([^)]*)\)\)", line)
            if mo:
                rows.append((int(mo.group(1)), tuple(sorted(mo.group(2).split()))))
        return rows

    def view_of(m):
        ok(m.noop())
        m.untagged_responses.pop("FETCH", None)  # imaplib keeps earlier flag updates
        rows = []
        for item in ok(m.fetch("1:*", "(UID FLAGS)")):
            mo = re.match(rb"(\d+) \(UID (\d+) FLAGS \(([^)]*)\)\)", item)
            flags = [f for f in mo.group(3).decode().split() if f != "\\Recent"]
            rows.append((int(mo.group(1)), int(mo.group(2)), tuple(sorted(flags))))
        return rows

    for c in idlers:
        c.command("d", "NOOP")
    fresh = stack.connect()
    ok(fresh.select("INBOX"))
    truth = view_of(fresh)
    assert [r[0] for r in truth] == list(range(1, len(truth) + 1))
    assert [r[1] for r in truth] == sorted(r[1] for r in truth)
    for c in idlers:
        assert c.count == len(truth)
    assert view_of_raw(idler, "e") == truth
    assert uid_view_of_raw(uidonly, "e") == [(uid, flags) for _, uid, flags in truth]
    for seed, m in sorted(workers.items()):
        assert view_of(m) == truth, f"worker {seed}"
        m.logout()
    fresh.logout()
    for c in idlers:
        c.close()


def test_fetch_star_on_empty_mailbox_and_tilde_atoms(stack):
    raw = stack.raw(login=True)
    assert raw.command("b", "SELECT Drafts")[-1].startswith("b OK")
    # Clients fetch 1:* on an empty mailbox and expect OK (a number past the end stays BAD).
    assert raw.command("c", "FETCH 1:* (UID FLAGS)") == ["c OK FETCH completed"]
    assert raw.command("d", "FETCH 1 (UID)")[-1].startswith("d BAD")
    # "~foo" is an atom, not the start of a literal8.
    assert raw.command("e", "SELECT ~foo")[-1].startswith("e NO")
    raw.close()
