"""mail-import of mail written by real programs: a Maildir written by Dovecot 2.3
(APPENDed over IMAP with flags, keywords and dates, in folders) and mbox files
written by mutt (saved from a mailbox, and its Fcc copy with Content-Length).
Folders, flags, keywords, internal dates and bytes are checked on the way out
(mail-export). scripts/install-deps installs dovecot and mutt; without them
these tests are skipped, saying so."""
import imaplib
import mailbox
import os
import shutil
import subprocess
import time

import pytest

from conftest import TESTSUITES, free_port
from test_import import USER, exp, imp, provision

DOVECOT_REF = os.path.join(TESTSUITES, "dovecot-ref.sh")


def maildir_export(run, datadir, out):
    """{mailbox folder: {subject: (bytes, flags, date)}} of a Maildir export."""
    exp(run, datadir, "--type", "maildir", out)
    md = mailbox.Maildir(str(out), create=False, factory=None)
    got = {}
    for name in [""] + md.list_folders():
        box = md if name == "" else md.get_folder(name)
        for key in box.keys():
            m = box.get_message(key)
            got.setdefault(name or "INBOX", {})[m["Subject"]] = (box.get_bytes(key), m.get_flags(), int(m.get_date()))
    return got


def keywords_of(out, folder):
    path = os.path.join(out, "" if folder == "INBOX" else "." + folder, "dovecot-keywords")
    if not os.path.exists(path):
        return {}
    # "N name": keyword N is the letter chr(ord('a') + N) in file names
    pairs = (line.split(" ", 1) for line in open(path).read().split("\n") if line)
    return {name: chr(ord("a") + int(n)) for n, name in pairs}


@pytest.mark.skipif(shutil.which("dovecot") is None, reason="dovecot not installed (scripts/install-deps: dovecot-imapd)")
@pytest.mark.skipif(not os.path.exists(DOVECOT_REF), reason=f"no {DOVECOT_REF} (the shared test suites)")
def test_maildir_written_by_dovecot(datadir, run, tmp_path):
    ref = tmp_path / "dovecot"
    ports = {"IMAP_PORT": str(free_port()), "POP3_PORT": str(free_port()), "SIEVE_PORT": str(free_port())}
    env = dict(os.environ, **ports)
    # Dovecot's daemons keep the script's stdout: a file, not a pipe to wait on.
    with open(tmp_path / "dovecot-start.log", "wb") as log:
        r = subprocess.run(["bash", DOVECOT_REF, "start", str(ref)], env=env, stdout=log, stderr=log)
    assert r.returncode == 0, (tmp_path / "dovecot-start.log").read_text()
    # (folder, flags, keywords, date, subject)
    sent = [("INBOX", (r"\Seen",), ("$Label1", "Project"), 1500000000, "inbox seen"),
            ("INBOX", (r"\Flagged", r"\Answered"), ("Project",), 1500086400, "inbox flagged"),
            ("INBOX", (), (), 1500172800, "inbox new"),
            ("Sent", (r"\Seen",), (), 1500259200, "sent one"),
            ("Trash", (r"\Seen", r"\Deleted"), (), 1500345600, "trash one"),
            ("Work/Projects", (r"\Draft",), ("$Important",), 1500432000, "nested draft")]
    try:
        deadline = time.time() + 10
        while True:
            try:
                imap = imaplib.IMAP4("127.0.0.1", int(ports["IMAP_PORT"]))
                break
            except OSError:
                assert time.time() < deadline, "dovecot does not answer"
                time.sleep(0.1)
        imap.login("testuser", "testpass")
        sep = imap.list('""', '""')[1][0].decode().split('"')[1]
        for folder in ("Sent", "Trash", "Work", "Work/Projects"):
            typ, _ = imap.create(folder.replace("/", sep))
            assert typ == "OK"
        for folder, flags, keywords, date, subject in sent:
            msg = (f"From: someone@example.org\r\nSubject: {subject}\r\n\r\nbody of {subject}\r\n"
                   "From the middle of a line\r\n").encode()
            typ, _ = imap.append(folder.replace("/", sep), "(" + " ".join(flags + keywords) + ")",
                                 imaplib.Time2Internaldate(date), msg)
            assert typ == "OK"
        imap.logout()
    finally:
        subprocess.run(["bash", DOVECOT_REF, "stop", str(ref)], env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    maildir = ref / "mail" / "testuser" / "Maildir"
    assert (maildir / "dovecot-keywords").exists(), "Dovecot keeps keywords in dovecot-keywords"

    provision(run, datadir, "--offline")
    out, err = imp(run, datadir, maildir)
    assert out["imported"] == len(sent) and out["skipped"] == 0, (out, err)
    again, _ = imp(run, datadir, maildir)
    assert again["imported"] == 0 and again["duplicates"] == len(sent)

    dest = tmp_path / "out"
    got = maildir_export(run, datadir, dest)
    letters = {r"\Seen": "S", r"\Flagged": "F", r"\Answered": "R", r"\Deleted": "T", r"\Draft": "D"}
    for folder, flags, keywords, date, subject in sent:
        folder_name = folder.replace("/", ".")
        raw, got_flags, got_date = got[folder_name][subject]
        assert raw == (f"From: someone@example.org\nSubject: {subject}\n\nbody of {subject}\n"
                       "From the middle of a line\n").encode(), (folder, raw)
        # Keywords are letters a-z in the file name, named in dovecot-keywords.
        names = keywords_of(dest, folder_name)
        want = {letters[f] for f in flags} | {names.get(k) for k in keywords}
        assert set(got_flags) == want, (folder, subject, got_flags, names)
        assert got_date == date, (subject, got_date)


def mutt(*args, tty=False, input=None):
    env = dict(os.environ, TERM="xterm")
    argv = ["mutt", "-F", "/dev/null", "-n", *args]
    if tty:  # mutt's screen needs a terminal: script(1) gives it one
        argv = ["script", "-qec", " ".join("'" + a.replace("'", "'\\''") + "'" for a in argv), "/dev/null"]
    r = subprocess.run(argv, env=env, input=input, capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr.decode()


@pytest.mark.skipif(shutil.which("mutt") is None, reason="mutt not installed (scripts/install-deps: mutt)")
def test_mbox_written_by_mutt(datadir, run, tmp_path):
    # A mailbox with flags, saved whole by mutt into a new mbox.
    src = mailbox.mbox(str(tmp_path / "src.mbox"), create=True)
    flags = ["", "R", "RO", "RA", "F", "RAF"]
    for i, f in enumerate(flags):
        m = mailbox.mboxMessage(f"From: s{i}@example.org\nSubject: mutt {i}\n\nbody {i}\n")
        m.set_from(f"s{i}@example.org", time.gmtime(1500000000 + i * 86400))
        m.set_flags(f)
        src.add(m)
    src.flush()
    src.close()
    saved = tmp_path / "saved.mbox"
    mutt("-f", str(tmp_path / "src.mbox"),
         "-e", "set confirmappend=no confirmcreate=no mbox_type=mbox delete=no move=no auto_tag=yes",
         "-e", f"push <tag-pattern>~A<enter><save-message>{saved}<enter><exit>", tty=True)
    assert sum(1 for _ in mailbox.mbox(str(saved), create=False)) == len(flags)
    # mutt's Fcc copy of a message it sent: Content-Length, and a "From " line left unquoted in the body.
    fcc = tmp_path / "sent.mbox"
    mutt("-e", f"set sendmail=/bin/true record={fcc} copy=yes mbox_type=mbox from=me@example.org use_from=yes",
         "-s", "mutt fcc", "rcpt@example.org", input=b"hello body\nFrom a line mutt left alone\nlast\n")
    assert b"\nFrom a line mutt left alone\n" in fcc.read_bytes()

    provision(run, datadir, "--offline")
    out, err = imp(run, datadir, "-m", "Saved", saved)
    assert out["imported"] == len(flags) and out["skipped"] == 0, (out, err)
    out, err = imp(run, datadir, "-m", "Sent", fcc)
    assert out["imported"] == 1 and out["skipped"] == 0, (out, err)

    got = maildir_export(run, datadir, tmp_path / "out")
    for i, f in enumerate(flags):
        raw, got_flags, got_date = got["Saved"][f"mutt {i}"]
        assert raw.endswith(f"\n\nbody {i}\n".encode()), raw
        want = {"S"} if "R" in f else set()
        want |= {"R"} if "A" in f else set()
        want |= {"F"} if "F" in f else set()
        assert set(got_flags) == want, (i, f, got_flags)
        assert got_date == 1500000000 + i * 86400
    raw, got_flags, _ = got["Sent"]["mutt fcc"]
    assert raw.endswith(b"\n\nhello body\nFrom a line mutt left alone\nlast\n"), raw
    assert set(got_flags) == {"S"}
