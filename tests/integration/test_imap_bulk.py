"""Whole-mailbox FETCH, SEARCH and STORE in mail-imapd past its chunk sizes:
summaries are read 1,024 per store request on another thread, output goes out
in 256 KiB pieces, and a session takes its own STORE as seen. Every message's
answer must still be its own, in order, and other sessions' changes still
reach it. Driven by Python's imaplib."""
import re

from test_imap import ok, datadir_for_daemons, stack  # noqa: F401 (fixtures)

COUNT = 1100  # more than one chunk of summaries; bodies past one output piece


def message(i):
    body = f"body line of message {i:05d}\r\n" * 12
    return (f"From: Sender {i} <s{i}@example.org>\r\nTo: u@example.com\r\n"
            f"Subject: bulk message {i:05d}\r\nMessage-ID: <{i}@bulk>\r\n\r\n{body}").encode()


def test_whole_mailbox_fetch_search_store(stack):
    m = stack.connect()
    ok(m.create("Bulk"))
    for i in range(COUNT):
        ok(m.append("Bulk", None, None, message(i)))
    ok(m.select("Bulk"))

    data = ok(m.fetch("1:*", "(UID ENVELOPE BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
    parts = [d for d in data if isinstance(d, tuple)]
    assert len(parts) == COUNT
    for i, (head, fields) in enumerate(parts):
        assert head.startswith(f"{i + 1} (UID {i + 1} ENVELOPE".encode()), head[:60]
        assert f'"bulk message {i:05d}"'.encode() in head
        assert fields == f"Subject: bulk message {i:05d}\r\n\r\n".encode()

    bodies = [d for d in ok(m.fetch("1:*", "BODY.PEEK[]")) if isinstance(d, tuple)]
    assert [b for _, b in bodies] == [message(i) for i in range(COUNT)]

    assert ok(m.search(None, "SUBJECT", '"message 01050"')) == [b"1051"]
    assert ok(m.search(None, "FROM", "s7@example.org")) == [b"8"]

    # Our own STORE 1:* is not listed back; another session's later change is.
    other = stack.connect()
    ok(other.select("Bulk"))
    ok(m.store("1:*", "+FLAGS.SILENT", "(\\Flagged)"))
    ok(other.store("7", "+FLAGS.SILENT", "(\\Seen)"))
    typ, data = m.noop()
    assert typ == "OK"
    seen = [d for d in m.untagged_responses.get("FETCH", []) if d.startswith(b"7 ")]
    assert seen and b"\\Seen" in seen[-1] and b"\\Flagged" in seen[-1], m.untagged_responses
    m.untagged_responses.pop("FETCH", None)
    flags = ok(m.fetch("1:*", "FLAGS"))
    assert len(flags) == COUNT
    for i, line in enumerate(flags):
        assert b"\\Flagged" in line, line
        assert (b"\\Seen" in line) == (i == 6), line
    # A second session sees every flag, through the store.
    listed = ok(other.fetch("1:*", "FLAGS"))
    assert sum(1 for line in listed if re.search(rb"\\Flagged", line)) == COUNT
    other.logout()
    m.logout()
