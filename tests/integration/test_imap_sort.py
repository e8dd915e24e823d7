"""SORT (RFC 5256, ESORT RFC 5267, SORT=DISPLAY RFC 5957) and THREAD
(ORDEREDSUBJECT, REFERENCES) in mail-imapd, driven by Python's imaplib and a
raw socket for the ESEARCH answers imaplib does not parse."""
import imaplib

import pytest

from test_imap import ok, datadir_for_daemons, stack  # noqa: F401 (fixtures)


def message(frm, to, subject, date=None, cc=None, extra=(), body_size=10):
    lines = [f"From: {frm}", f"To: {to}", f"Subject: {subject}"]
    if cc:
        lines.append(f"Cc: {cc}")
    if date:
        lines.append(f"Date: {date}")
    lines += list(extra)
    return ("\r\n".join(lines) + "\r\n\r\n" + "x" * body_size + "\r\n").encode()


def fill(m, box, msgs):
    """Appends (internal date, message) pairs into a new mailbox whose UIDs start
    at 2 (the first message is expunged), so UID and sequence answers differ."""
    ok(m.create(box))
    ok(m.append(box, None, '"01-Jan-2022 00:00:00 +0000"', message("a@b", "c@d", "gone")))
    for idate, raw in msgs:
        ok(m.append(box, None, f'"{idate}"', raw))
    ok(m.select(box))
    ok(m.store("1", "+FLAGS", "\\Deleted"))
    ok(m.expunge())


# Four messages whose keys disagree: naive lower-case comparison, local-time
# dates or a loose base subject would each give a different order.
SORT_MSGS = [
    ("10-Mar-2022 00:00:00 +0000",
     message("Zoe <alice@ex.org>", "bob@ex.org", "Re: [list] Fwd: bananas (fwd)",
             "Thu, 3 Mar 2022 20:00:00 +0000", cc="dan@ex.org", body_size=100)),
    ("01-Mar-2022 00:00:00 +0000",
     message("_under@ex.org", "Alice@ex.org", "apples", None, cc="carl@ex.org", body_size=1600)),
    ("05-Mar-2022 00:00:00 +0000",
     message("Adam <mike@ex.org>", "Aaron <carl@ex.org>", "BANANAS", "Wed, 2 Mar 2022 10:00:00 +0000",
             body_size=3000)),
    ("02-Mar-2022 00:00:00 +0000",
     message("=?utf-8?q?bob?= <bob@ex.org>", "_x@ex.org", "re: Apples", "Fri, 4 Mar 2022 01:00:00 +0800",
             body_size=400)),
]


def sort(m, criteria, *search, uid=False):
    if uid:
        typ, data = m.uid("SORT", criteria, "UTF-8", *(search or ("ALL",)))
    else:
        typ, data = m.sort(criteria, "UTF-8", *(search or ("ALL",)))
    assert typ == "OK", data
    return (data[0] or b"").decode().split()


def test_sort_every_key(stack):
    m = stack.connect()
    caps = m.capabilities
    for cap in ("SORT", "ESORT", "SORT=DISPLAY"):
        assert cap in caps
    fill(m, "sorting", SORT_MSGS)
    # i;ascii-casemap: '_' sorts after letters ('_' > 'Z'), case is ignored.
    assert sort(m, "(FROM)") == ["1", "4", "3", "2"]
    assert sort(m, "(TO)") == ["2", "1", "3", "4"]
    assert sort(m, "(CC)") == ["3", "4", "2", "1"]  # no Cc sorts first, then sequence order
    # Base subjects: "Re: [list] Fwd: bananas (fwd)" is BANANAS, "re: Apples" APPLES.
    assert sort(m, "(SUBJECT)") == ["2", "4", "1", "3"]
    # Sent dates in UTC (+0800 is earlier than it reads); no Date: the internal date.
    assert sort(m, "(DATE)") == ["2", "3", "4", "1"]
    assert sort(m, "(ARRIVAL)") == ["2", "4", "3", "1"]
    assert sort(m, "(SIZE)") == ["1", "4", "2", "3"]
    assert sort(m, "(REVERSE SIZE)") == ["3", "2", "4", "1"]
    # Display names, RFC 2047 decoded, else the address.
    assert sort(m, "(DISPLAYFROM)") == ["3", "4", "1", "2"]
    assert sort(m, "(DISPLAYTO)") == ["3", "2", "1", "4"]
    assert sort(m, "(SUBJECT REVERSE DATE)") == ["4", "2", "1", "3"]
    assert sort(m, "(REVERSE ARRIVAL)") == ["1", "3", "4", "2"]
    # UIDs start at 2 here; SORT takes any SEARCH keys.
    assert sort(m, "(SIZE)", uid=True) == ["2", "5", "3", "4"]
    assert sort(m, "(SIZE)", "SUBJECT", "apples") == ["4", "2"]
    assert sort(m, "(SIZE)", "OR", "FROM", "zoe", "LARGER", "2000") == ["1", "3"]
    assert sort(m, "(DATE)", "UID", "3:4") == ["2", "3"]
    assert sort(m, "(DATE)", "SUBJECT", "nothing-matches") == []
    m.logout()


def test_esort_and_errors(stack):
    m = stack.connect()
    fill(m, "sorting", SORT_MSGS)
    m.logout()
    r = stack.raw()
    r.command("a", 'LOGIN "joe@example.com" "correct horse"')
    r.command("b", "SELECT sorting")
    lines = r.command("c", "SORT RETURN (MIN MAX COUNT) (DATE) UTF-8 ALL")
    assert lines[0] == '* ESEARCH (TAG "c") MIN 2 MAX 1 COUNT 4', lines
    lines = r.command("d", "SORT RETURN (ALL) (SIZE) UTF-8 ALL")
    assert lines[0] == '* ESEARCH (TAG "d") ALL 1,4,2:3', lines
    lines = r.command("e", "UID SORT RETURN () (SIZE) UTF-8 ALL")
    assert lines[0] == '* ESEARCH (TAG "e") UID ALL 2,5,3:4', lines
    lines = r.command("f", "SORT RETURN (COUNT) (SIZE) UTF-8 SUBJECT nothing")
    assert lines[0] == '* ESEARCH (TAG "f") COUNT 0', lines
    # SAVE keeps the result for $ (SEARCHRES); alone it answers nothing.
    lines = r.command("g", "SORT RETURN (SAVE) (SIZE) UTF-8 SUBJECT apples")
    assert lines == ["g OK SORT completed"], lines
    lines = r.command("h", "SEARCH $")
    assert lines[0] in ("* SEARCH 2 4", '* ESEARCH (TAG "h") ALL 2,4'), lines
    for bad in ("SORT (BOGUS) UTF-8 ALL", "SORT SIZE UTF-8 ALL", "SORT () UTF-8 ALL",
                "SORT (REVERSE) UTF-8 ALL", "SORT (SIZE) UTF-8", "SORT (SIZE) UTF-8 BOGUS",
                "SORT RETURN (FOO) (SIZE) UTF-8 ALL", "SORT (SIZE", "SORT"):
        lines = r.command("x", bad)
        assert lines[-1].startswith("x BAD "), (bad, lines)
    lines = r.command("y", "SORT (SIZE) KOI8-R ALL")
    assert lines[-1].startswith("y NO [BADCHARSET"), lines
    r.command("z", "LOGOUT")
    r.close()


def refs(mid, references=None, in_reply_to=None):
    extra = [f"Message-ID: {mid}"]
    if references:
        extra.append(f"References: {references}")
    if in_reply_to:
        extra.append(f"In-Reply-To: {in_reply_to}")
    return extra


def thread_msgs():
    day = "Mon, {} Mar 2022 10:00:00 +0000"
    spec = [  # (subject, headers)
        ("party", refs("<a@x>")),
        ("Re: party", refs("<b@x>", "<a@x>")),
        # its parent <missing@x> is absent: the dummy goes, it becomes a's child
        ("Re: party", refs("<c@x>", "<a@x> <missing@x>")),
        # no References: In-Reply-To names the parent
        ("Re: party", refs("<d@x>", None, "<b@x> (comment) <junk>")),
        ("Re: other", refs("<e@x>")),
        # a non-reply with the same base subject becomes the reply's parent
        ("other", refs("<f@x>")),
        # two replies to a message we do not have stay under one dummy
        ("Re: lonely", refs("<g@x>", "<zz@x>")),
        ("lonely", refs("<h@x>", "<zz@x>")),
    ]
    return [("01-Apr-2022 00:00:00 +0000",
             message("a@x", "b@x", subj, day.format(i + 1), extra=hdrs)) for i, (subj, hdrs) in enumerate(spec)]


def thread(m, alg, *search, uid=False):
    if uid:
        typ, data = m.uid("THREAD", alg, "UTF-8", *(search or ("ALL",)))
    else:
        typ, data = m.thread(alg, "UTF-8", *(search or ("ALL",)))
    assert typ == "OK", data
    return (data[0] or b"").decode()


def test_thread_references_and_orderedsubject(stack):
    m = stack.connect()
    for cap in ("THREAD=REFERENCES", "THREAD=ORDEREDSUBJECT"):
        assert cap in m.capabilities
    fill(m, "threads", thread_msgs())
    assert thread(m, "REFERENCES") == "(1 (2 4)(3))(6 5)((7)(8))"
    assert thread(m, "ORDEREDSUBJECT") == "(1 (2)(3)(4))(5 6)(7 8)"
    assert thread(m, "REFERENCES", uid=True) == "(2 (3 5)(4))(7 6)((8)(9))"
    # Search keys narrow what is threaded: without 1, 2 and 3 are siblings under a dummy.
    assert thread(m, "REFERENCES", "NOT", "1", "SUBJECT", "party") == "((2 4)(3))"
    assert thread(m, "REFERENCES", "SUBJECT", "nothing") == ""
    with pytest.raises(imaplib.IMAP4.error):
        m.thread("BOGUS", "UTF-8", "ALL")
    typ, data = m.thread("REFERENCES", "KOI8-R", "ALL")
    assert typ == "NO" and b"BADCHARSET" in data[0], data
    m.logout()
