"""mail-imapd conformance details found with imaptest: BINARY of binary content
(RFC 3516), UIDONLY (RFC 9586) and REPLACE as one store transaction (RFC 8508).
Raw sockets where the exact response matters (imaplib knows neither literal8
nor UIDFETCH), imaplib for the error paths and to check what was stored."""
import imaplib
import re

import pytest

from test_imap import (MESSAGE, USER, PASSWORD, ok, start_stack,  # noqa: F401 (fixtures)
                       datadir_for_daemons, stack)


def raw_until(c, tag):
    """Reads bytes up to and including the tagged line `tag ...`."""
    c.sock.settimeout(10)
    while not re.search(rb"(^|\r\n)" + tag + rb" [^\r\n]*\r\n", c.buf):
        chunk = c.sock.recv(65536)
        if not chunk:
            raise EOFError(repr(c.buf))
        c.buf += chunk
    m = re.search(rb"(^|\r\n)" + tag + rb" [^\r\n]*\r\n", c.buf)
    data, c.buf = c.buf[:m.end()], c.buf[m.end():]
    return data


BINARY_PART = b"\x00-\xe4\n\r\n\n"  # append-binary's body: a NUL, a bare LF, CR LF, LF
BINARY_MESSAGE = (b"From: user@domain.org\r\n"
                  b"Date: Sat, 24 Mar 2007 23:00:00 +0200\r\n"
                  b"Mime-Version: 1.0\r\n"
                  b"Content-Type: application/octet-stream\r\n"
                  b"Content-Transfer-Encoding: binary\r\n"
                  b"\r\n" + BINARY_PART)


def test_binary_part_is_exact_and_body_carries_no_nul(stack):
    c = stack.raw(login=True)
    c.send(b"p APPEND INBOX ~{%d+}\r\n" % len(BINARY_MESSAGE) + BINARY_MESSAGE + b"\r\n")
    assert c.until("p")[-1].startswith("p OK [APPENDUID")
    c.command("s", "SELECT INBOX")
    # RFC 3516: BINARY[1] is the decoded part (binary: as stored), in a
    # literal8 because it holds a NUL, and BINARY.SIZE[1] is its length.
    c.send("b FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1])\r\n")
    data = raw_until(c, b"b")
    assert b"BINARY.SIZE[1] 7" in data, data
    assert b"BINARY[1] ~{7}\r\n" + BINARY_PART + b")\r\n" in data, data
    # BODY[1] uses a plain literal, which may not carry NUL: 0x80 stands in, same size.
    c.send("f FETCH 1 (BODY.PEEK[1])\r\n")
    data = raw_until(c, b"f")
    assert b"BODY[1] {7}\r\n\x80-\xe4\n\r\n\n)\r\n" in data, data
    assert b"f OK" in data
    c.close()


# ---- UIDONLY ---------------------------------------------------------------


def test_uidonly_refuses_sequence_numbers_imaplib(stack):
    m = stack.connect()
    for i in range(3):
        ok(m.append("INBOX", None, None, MESSAGE.replace(b"lunch", b"lunch %d" % i)))
    assert "UIDONLY" in m.capabilities
    typ, data = m.enable("UIDONLY")
    assert typ == "OK" and m.untagged_responses.get("ENABLED") == [b"UIDONLY"], (typ, data)
    ok(m.select("INBOX"))
    for call in (lambda: m.fetch("1", "(FLAGS)"),
                 lambda: m.store("1", "+FLAGS", "\\Seen"),
                 lambda: m.search(None, "ALL"),
                 lambda: m.copy("1", "Archive"),
                 lambda: m._simple_command("MOVE", "1", "Archive"),
                 lambda: m.sort("(DATE)", "UTF-8", "ALL"),
                 lambda: m.thread("REFERENCES", "UTF-8", "ALL"),
                 # a sequence-set search key, even in UID SEARCH
                 lambda: m.uid("SEARCH", "1:2"),
                 lambda: m.uid("SEARCH", "OR", "UID", "1", "NOT", "2")):
        with pytest.raises(imaplib.IMAP4.error, match="UIDREQUIRED"):
            call()
    # The UID forms work and nothing was changed by the refused ones.
    typ, data = m.uid("SEARCH", "UID", "1:*")
    assert typ == "OK" and data == [b"1 2 3"], data
    typ, data = m.uid("COPY", "1", "Archive")
    assert typ == "OK", data
    assert ok(m.status("Archive", "(MESSAGES)"))[0].endswith(b"(MESSAGES 1)")
    ok(m.uid("FETCH", "1:*", "(FLAGS)"))
    assert [x.split(b" ", 1)[0] for x in m.untagged_responses.get("UIDFETCH", [])] == [b"1", b"2", b"3"]
    m.logout()


def test_uidonly_responses_carry_uids_only(stack):
    m = stack.connect()
    for i in range(4):
        ok(m.append("INBOX", None, None, MESSAGE.replace(b"lunch", b"lunch %d" % i)))
    c = stack.raw(login=True)
    assert c.command("e", "ENABLE IMAP4rev2 UIDONLY")[0] == "* ENABLED IMAP4rev2 UIDONLY"  # rev2: no \Recent
    c.command("s", "SELECT INBOX")
    ok(m.select("INBOX"))
    ok(m.uid("STORE", "1", "+FLAGS", "\\Deleted"))
    ok(m.expunge())  # uid 1 goes: sequence numbers shift, UIDs do not
    lines = c.command("f", "UID FETCH 3:* (FLAGS)")
    assert sorted(lines[:-1]) == ["* 3 UIDFETCH (FLAGS ())", "* 4 UIDFETCH (FLAGS ())", "* VANISHED 1"], lines
    lines = c.command("f", "UID FETCH 2 (UID RFC822.SIZE)")  # an asked-for UID item stays
    assert re.match(r"\* 2 UIDFETCH \(UID 2 RFC822\.SIZE \d+\)$", lines[0]), lines
    lines = c.command("t", "UID STORE 2 +FLAGS (\\Deleted)")
    assert lines[0] == "* 2 UIDFETCH (FLAGS (\\Deleted))", lines
    lines = c.command("x", "EXPUNGE")
    assert lines[:-1] == ["* VANISHED 2"], lines
    # Another session's flag change and expunge, seen by NOOP and in IDLE.
    ok(m.uid("STORE", "3", "+FLAGS", "\\Flagged"))
    lines = c.command("n", "NOOP")
    assert "* 3 UIDFETCH (FLAGS (\\Flagged))" in lines, lines
    c.send("i IDLE\r\n")
    assert c.line().startswith("+ ")
    ok(m.uid("STORE", "4", "+FLAGS", "\\Deleted"))
    ok(m.expunge())
    seen = [c.line()]
    while seen[-1] != "* VANISHED 4":
        assert "EXPUNGE" not in seen[-1] and " FETCH " not in seen[-1], seen
        seen.append(c.line())
    c.send("DONE\r\n")
    assert c.until("i")[-1].startswith("i OK")
    # UID MOVE reports the moved message as VANISHED too; REPLACE needs its UID form.
    lines = c.command("v", "UID MOVE 3 Archive")
    assert "* VANISHED 3" in lines and not any("EXPUNGE" in x for x in lines), lines
    c.send(b"r REPLACE 1 INBOX {%d+}\r\n" % len(MESSAGE) + MESSAGE + b"\r\n")
    assert c.until("r")[-1].startswith("r BAD [UIDREQUIRED]")
    # UNAUTHENTICATE forgets it, as every ENABLEd extension.
    assert c.command("u", "UNAUTHENTICATE")[-1].startswith("u OK")
    c.login()
    c.command("s", "SELECT INBOX")
    assert c.command("f", "FETCH 1:* (FLAGS)")[-1].startswith("f OK")
    m.logout()
    c.close()


# ---- REPLACE in one transaction ---------------------------------------------


def replace(c, tag, command, message):
    c.send(b"%s %s {%d+}\r\n" % (tag.encode(), command.encode(), len(message)) + message + b"\r\n")
    return c.until(tag)


def subjects(m, box):
    typ, data = m.select(box, readonly=True)
    assert typ == "OK", data
    typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK", data
    out = {}
    for item in data:
        if isinstance(item, tuple):
            uid = int(re.search(rb"UID (\d+)", item[0]).group(1))
            out[uid] = item[1].decode().strip()
    return out


def test_replace_is_one_transaction(stack, run):
    m = stack.connect()
    ok(m.append("Drafts", "(\\Draft)", None, MESSAGE))
    c = stack.raw(login=True)
    c.command("s", "SELECT Drafts")
    # Into another mailbox: the draft leaves Drafts and arrives in Archive.
    lines = replace(c, "r", "UID REPLACE 1 Archive (\\Seen)", MESSAGE.replace(b"lunch", b"brunch"))
    assert re.match(r"\* OK \[APPENDUID \d+ 1\]", lines[0]) and lines[-1] == "r OK REPLACE completed", lines
    assert "* 1 EXPUNGE" in lines, lines
    assert subjects(m, "Drafts") == {}
    assert subjects(m, "Archive") == {1: "Subject: brunch plans"}

    ok(m.append("Drafts", "(\\Draft)", None, MESSAGE))  # uid 2
    c.command("n", "NOOP")
    # A UID that is not there: NO, and nothing is stored anywhere.
    lines = replace(c, "m", "UID REPLACE 99 Drafts", MESSAGE.replace(b"lunch", b"tea"))
    assert lines[-1].startswith("m NO"), lines
    # Over quota: NO [OVERQUOTA], and the old message stays as it was.
    used = len(MESSAGE) + len(MESSAGE.replace(b"lunch", b"brunch"))
    r = run("mailctl", "--data-dir", stack.datadir, "quota", "set", USER, str(used + 100))
    assert r.returncode == 0, r.stderr.decode()
    big = MESSAGE.replace(b"Shall we", b"x" * 500 + b" Shall we")
    lines = replace(c, "q", "UID REPLACE 2 Drafts", big)
    assert lines[-1].startswith("q NO [OVERQUOTA]"), lines
    assert not any("EXPUNGE" in x or "EXISTS" in x for x in lines), lines
    assert subjects(m, "Drafts") == {2: "Subject: lunch plans"}
    # The quota counts the replacement, not both copies: a draft a little
    # larger than the old one fits where an APPEND of it would not.
    bigger = MESSAGE.replace(b"lunch", b"lunch!!!!")
    lines = replace(c, "a", "APPEND Drafts", bigger)
    assert lines[-1].startswith("a NO [OVERQUOTA]"), lines
    lines = replace(c, "o", "UID REPLACE 2 Drafts (\\Draft)", bigger)
    assert lines[-1] == "o OK REPLACE completed", lines
    assert subjects(m, "Drafts") == {3: "Subject: lunch!!!! plans"}
    # Bad syntax and a read-only selection change nothing either.
    assert replace(c, "b", "UID REPLACE 3 Drafts (\\Bogus)", MESSAGE)[-1].startswith("b BAD")
    c.command("e", "EXAMINE Drafts")
    assert replace(c, "w", "UID REPLACE 3 Drafts", MESSAGE)[-1].startswith("w NO [READ-ONLY]")
    assert subjects(m, "Drafts") == {3: "Subject: lunch!!!! plans"}
    m.logout()
    c.close()
