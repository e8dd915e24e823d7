"""mail-import and mail-export with real inputs: Maildirs and mbox files written by
Python's `mailbox` module, the imaptest mbox corpus, stdin; offline and through a
running mail-stored. Round trips (import -> export -> import) keep bytes, flags,
keywords and dates; a second import adds nothing; bad input is reported with the
file and offset and the exit status says something was skipped."""
import json
import mailbox
import os
import subprocess
import time

import pytest

from conftest import TESTSUITES, binary

EX_USAGE, EX_DATAERR, EX_NOUSER = 64, 65, 67
USER = "user@example.test"
CORPUS = os.path.join(TESTSUITES, "imaptest", "tests")


def provision(run, datadir, *extra):
    r = run("mailctl", "--data-dir", datadir, *extra, "domain", "add", "example.test")
    assert r.returncode == 0, r.stderr.decode()
    r = run("mailctl", "--data-dir", datadir, *extra, "account", "add", USER, "--password-stdin", input="pw\n")
    assert r.returncode == 0, r.stderr.decode()


@pytest.fixture
def store_dir(datadir, run):
    provision(run, datadir, "--offline")
    return datadir


def imp(run, datadir, *args, input=None, code=0):
    r = run("mail-import", "--data-dir", datadir, "-a", USER, "--format", "json", *args, input=input)
    assert r.returncode == code, (args, r.returncode, r.stderr.decode())
    return json.loads(r.stdout) if r.stdout else None, r.stderr.decode()


def exp(run, datadir, *args, code=0):
    r = run("mail-export", "--data-dir", datadir, "-a", USER, "--format", "json", *args)
    assert r.returncode == code, (args, r.returncode, r.stderr.decode())
    return r


def mbox_messages(path):
    """(bytes, flags, keywords, from-line) of every message of an mbox file, in order."""
    out = []
    box = mailbox.mbox(path, create=False)
    for key in box.keys():
        m = box.get_message(key)
        raw = box.get_bytes(key)
        out.append((strip_meta(raw), m.get_flags(), m.get("X-Keywords", ""), m.get_from().split(" ", 1)[1]))
    box.close()
    return out


def strip_meta(raw):
    head, sep, body = raw.partition(b"\n\n")
    lines = [l for l in head.split(b"\n")
             if not l.lower().startswith((b"status:", b"x-status:", b"x-keywords:"))]
    return b"\n".join(lines) + sep + body


def exported(run, datadir, tmp_path, name):
    """Exports every mailbox as mbox files; {relative file: messages}."""
    out = tmp_path / name
    exp(run, datadir, "--type", "mbox", str(out) + "/")
    files = {}
    for root, _, names in os.walk(out):
        for n in names:
            p = os.path.join(root, n)
            files[os.path.relpath(p, out)] = sorted(mbox_messages(p))
    return files


def write_python_maildir(path):
    md = mailbox.Maildir(str(path), create=True)
    msgs = []
    for i, flags in enumerate(["", "S", "RS", "FS", "DT", "P"]):
        m = mailbox.MaildirMessage(f"From: a{i}@example.org\nSubject: maildir {i}\n\nbody {i}\nFrom here\n")
        m.set_subdir("cur" if flags else "new")
        m.set_flags(flags)
        m.set_date(1600000000 + i * 3600)
        msgs.append(m)
        md.add(m)
    sent = md.add_folder("Sent")
    sent.add(mailbox.MaildirMessage("Subject: sent one\n\nsent\n"))
    sub = md.add_folder("Projects.Entw&APw-rfe")
    sub.add(mailbox.MaildirMessage("Subject: draft\n\ndraft\n"))
    md.add_folder("Empty")
    return len(msgs) + 2


def write_python_mbox(path, n=20):
    box = mailbox.mbox(str(path), create=True)
    for i in range(n):
        m = mailbox.mboxMessage(
            f"From: sender{i}@example.org\nSubject: message {i}\nMessage-ID: <{i}@example.org>\n\n"
            f"line one\nFrom the middle of a line {i}\n>From already quoted\n\n" + "x" * (i * 500) + "\n")
        m.set_from(f"sender{i}@example.org", time.gmtime(1500000000 + i * 86400))
        m.set_flags(["", "R", "RO", "RA", "F", "RAF"][i % 6])
        if i % 4 == 0:
            m["X-Keywords"] = "$Label1 project"
        box.add(m)
    box.flush()
    box.close()
    return n


def test_maildir_written_by_python(store_dir, run, tmp_path):
    n = write_python_maildir(tmp_path / "Maildir")
    out, err = imp(run, store_dir, tmp_path / "Maildir")
    assert out["imported"] == n and out["skipped"] == 0, (out, err)
    boxes = {m["mailbox"]: m for m in out["mailboxes"]}
    assert boxes["INBOX"]["imported"] == 6
    assert boxes["Sent"]["imported"] == 1
    assert boxes["Projects/Entwürfe"]["imported"] == 1
    assert "Empty" in boxes

    again, _ = imp(run, store_dir, tmp_path / "Maildir")
    assert again["imported"] == 0 and again["duplicates"] == n, again

    # Exported as Maildir, Python reads the same flags and dates back.
    exp(run, store_dir, "--type", "maildir", tmp_path / "out")
    md = mailbox.Maildir(str(tmp_path / "out"), create=False)
    got = sorted((m["Subject"], m.get_flags(), int(m.get_date())) for m in md)
    want = sorted((f"maildir {i}", f, 1600000000 + i * 3600)
                  for i, f in enumerate(["", "S", "RS", "FS", "DT", "P"]))
    assert got == want
    assert {"Empty", "Projects.Entw&APw-rfe", "Sent"} <= set(md.list_folders())
    with open(os.path.join(tmp_path / "out", ".Sent", "cur", os.listdir(tmp_path / "out" / ".Sent" / "cur")[0]),
              "rb") as f:
        assert f.read() == b"Subject: sent one\n\nsent\n"


def test_mbox_round_trip_is_identical(store_dir, run, tmp_path):
    n = write_python_mbox(tmp_path / "in.mbox")
    original = mbox_messages(str(tmp_path / "in.mbox"))
    out, err = imp(run, store_dir, tmp_path / "in.mbox")
    assert out["imported"] == n, (out, err)

    first = exported(run, store_dir, tmp_path, "export1")
    assert sorted(f for f, msgs in first.items() if msgs) == ["INBOX.mbox"]
    assert "Sent.mbox" in first  # every mailbox has its file, empty ones too
    # Bytes (mboxrd escaping undone), flags, keywords and From_ dates as written by Python.
    # ("O", old, is IMAP's absent \Recent: not kept.)
    def norm(msgs):
        return sorted((b, "".join(sorted(f.replace("O", ""))), k, d) for b, f, k, d in msgs)
    assert norm(first["INBOX.mbox"]) == norm(original)

    # Re-importing the export into the same account adds nothing.
    again, _ = imp(run, store_dir, tmp_path / "export1")
    assert again["imported"] == 0 and again["duplicates"] == n

    # Into a fresh store and out again: the same files.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    provision(run, str(fresh), "--offline")
    out2, _ = imp(run, str(fresh), tmp_path / "export1")
    assert out2["imported"] == n
    assert exported(run, str(fresh), tmp_path, "export2") == first


def test_imaptest_corpus_tree(store_dir, run, tmp_path):
    if not os.path.isdir(CORPUS):
        pytest.skip("no imaptest corpus in ../shared/testsuites")
    files = sorted(f for f in os.listdir(CORPUS) if f.endswith(".mbox"))
    tree = tmp_path / "tree"
    tree.mkdir()
    expected = {}
    for f in files:
        src = os.path.join(CORPUS, f)
        with open(src, "rb") as s, open(tree / f, "wb") as d:
            d.write(s.read())
        expected[f[:-5]] = len(mailbox.mbox(src, create=False))
    out, err = imp(run, store_dir, tree)
    got = {m["mailbox"]: m["imported"] + m["duplicates"] for m in out["mailboxes"]}
    assert got == expected, err
    again, _ = imp(run, store_dir, tree)
    assert again["imported"] == 0


def test_stdin_and_eml(store_dir, run, tmp_path):
    msg = b"From: a@example.org\nSubject: stdin\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n\nhello\n"
    out, _ = imp(run, store_dir, "-m", "Archive", "-", input=msg)
    assert out["imported"] == 1 and out["mailboxes"][0]["mailbox"] == "Archive"
    out, _ = imp(run, store_dir, "-m", "Archive", "-", input=msg)
    assert out["imported"] == 0 and out["duplicates"] == 1
    # An mbox on stdin.
    write_python_mbox(tmp_path / "s.mbox", 3)
    with open(tmp_path / "s.mbox", "rb") as f:
        out, _ = imp(run, store_dir, "-", input=f.read())
    assert out["imported"] == 3
    (tmp_path / "one.eml").write_bytes(msg.replace(b"stdin", b"eml"))
    out, _ = imp(run, store_dir, tmp_path / "one.eml")
    assert out["imported"] == 1
    r = exp(run, store_dir, "--type", "mbox", "-m", "Archive", "-")
    assert r.stdout.startswith(b"From MAILER-DAEMON Mon Jan  1 00:00:00 2024\n")
    assert b"\nSubject: stdin\n" in r.stdout


def test_bad_input_warns_with_offset_and_exit_status(store_dir, run, tmp_path):
    good = b"From a@b Wed Nov 25 14:39:16 2026\nSubject: ok\n\nfine\n\n"
    junk = b"From a@b Wed Nov 25 14:39:17 2026\nthis is not a header\n\n"
    cut = b"From a@b Wed Nov 25 14:39:18 2026\nSubject: cut\n\nhalf a me"
    (tmp_path / "bad.mbox").write_bytes(good + junk + cut)
    out, err = imp(run, store_dir, tmp_path / "bad.mbox", code=EX_DATAERR)
    assert out["imported"] == 2 and out["skipped"] == 1, (out, err)
    assert f"bad.mbox: offset {len(good)}: not a message" in err
    assert f"offset {len(good) + len(junk)}: mbox ends without a final newline" in err

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    provision(run, str(fresh), "--offline")
    out, err = imp(run, str(fresh), "--strict", "--jobs", "1", tmp_path / "bad.mbox", code=EX_DATAERR)
    assert out["imported"] == 1, out
    assert "--strict" in err

    (tmp_path / "notmail.mbox").write_bytes(b"just text\n")
    out, err = imp(run, store_dir, "--type", "mbox", tmp_path / "notmail.mbox", code=EX_DATAERR)
    assert "not an mbox file" in err


def test_errors(store_dir, run, tmp_path):
    r = run("mail-import", "--data-dir", store_dir, "-a", "nobody@example.test", "-", input=b"A: b\n\nc\n")
    assert r.returncode == EX_NOUSER, r.stderr
    r = run("mail-import", "--data-dir", store_dir, "-a", USER, tmp_path / "missing")
    assert r.returncode == EX_NOUSER and b"no such file" in r.stderr
    r = run("mail-import", "--data-dir", store_dir, USER)
    assert r.returncode == EX_USAGE
    r = run("mail-export", "--data-dir", store_dir, "-a", USER, "-m", "Nope", tmp_path / "x")
    assert r.returncode == EX_NOUSER and b"no such mailbox" in r.stderr
    r = run("mail-export", "--data-dir", store_dir, "-a", USER, "-")
    assert r.returncode == EX_USAGE


def test_through_running_store_daemon(datadir, run, stored, tmp_path):
    provision(run, datadir)
    n = write_python_mbox(tmp_path / "in.mbox", 50)
    out, err = imp(run, datadir, "--online", "--jobs", "8", tmp_path / "in.mbox")
    assert out["imported"] == n, err
    again, _ = imp(run, datadir, "--online", tmp_path / "in.mbox")
    assert again["imported"] == 0 and again["duplicates"] == n
    r = exp(run, datadir, "--online", "--type", "mbox", "-m", "INBOX", tmp_path / "out.mbox")
    assert sorted(m[0] for m in mbox_messages(str(tmp_path / "out.mbox"))) == \
        sorted(m[0] for m in mbox_messages(str(tmp_path / "in.mbox")))
    assert stored.alive()
