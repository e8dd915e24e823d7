"""mail-imapd with real mail clients: mbsync (isync) syncing an account both ways
with flags, and mutt in batch mode reading and moving mail."""
import glob
import os
import shutil
import subprocess

import pytest

from test_imap import USER, PASSWORD, MESSAGE, ok, datadir_for_daemons, start_stack  # noqa: F401


@pytest.fixture
def stack(datadir_for_daemons, tmp_path, daemons, run):
    s = start_stack(datadir_for_daemons, tmp_path, daemons, run)
    yield s
    assert s.imapd.alive(), "mail-imapd died:\n" + s.imapd.log_text()
    log = s.imapd.log_text()
    assert "Sanitizer" not in log and "runtime error" not in log, log


def message(subject):
    return MESSAGE.replace(b"lunch plans", subject.encode()).replace(
        b"<lunch@example.com>", f"<{subject.replace(' ', '.')}@example.com>".encode())


def imap_view(stack, box):
    """{subject: sorted flags} of a mailbox, through imaplib."""
    m = stack.connect()
    ok(m.select(box))
    view = {}
    typ, data = m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    for item in data:
        if isinstance(item, tuple):
            flags = item[0].decode().split("FLAGS (")[1].split(")")[0].split()
            subject = item[1].decode().split(":", 1)[1].strip()
            view[subject] = sorted(f for f in flags if f != "\\Recent")
    m.logout()
    return view


def mbsync(tmp_path, stack):
    rc = tmp_path / "mbsyncrc"
    maildir = tmp_path / "Mail"
    maildir.mkdir(exist_ok=True)
    rc.write_text(f"""IMAPAccount test
Host 127.0.0.1
Port {stack.port}
User {USER}
Pass "{PASSWORD}"
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account test

MaildirStore local
Path {maildir}/
Inbox {maildir}/INBOX
SubFolders Verbatim

Channel test
Far :remote:
Near :local:
Patterns INBOX Archive
Create Both
Expunge Both
Sync All
SyncState *
""")
    r = subprocess.run(["mbsync", "-c", str(rc), "-a"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=120)
    assert r.returncode == 0, r.stdout.decode()
    return maildir


def maildir_view(path):
    view = {}
    for f in glob.glob(os.path.join(path, "cur", "*")) + glob.glob(os.path.join(path, "new", "*")):
        with open(f, "rb") as fh:
            head = fh.read().split(b"\r\n\r\n")[0].split(b"\n\n")[0]
        subject = [l for l in head.decode().splitlines() if l.startswith("Subject:")][0][8:].strip()
        info = os.path.basename(f).split(":2,")[1] if ":2," in f else ""
        view[subject] = sorted({"F": "\\Flagged", "S": "\\Seen", "R": "\\Answered", "T": "\\Deleted",
                                "D": "\\Draft"}[c] for c in info if c in "FSRTD")
    return view, glob.glob(os.path.join(path, "cur", "*")) + glob.glob(os.path.join(path, "new", "*"))


@pytest.mark.skipif(not shutil.which("mbsync"), reason="mbsync (Debian isync) not installed")
def test_mbsync_both_ways_with_flags(stack, tmp_path):
    m = stack.connect()
    ok(m.append("INBOX", "(\\Seen)", None, message("first")))
    ok(m.append("INBOX", "(\\Flagged)", None, message("second")))
    ok(m.append("INBOX", None, None, message("third")))
    m.logout()

    maildir = mbsync(tmp_path, stack)
    local, files = maildir_view(maildir / "INBOX")
    assert local == {"first": ["\\Seen"], "second": ["\\Flagged"], "third": []}

    # Local changes: flag "third", mark "second" seen, add a new message.
    for f in files:
        with open(f, "rb") as fh:
            data = fh.read()
        base, _, info = os.path.basename(f).partition(":2,")
        if b"Subject: third" in data:
            os.rename(f, os.path.join(maildir, "INBOX", "cur", base + ":2,F"))
        elif b"Subject: second" in data:
            os.rename(f, os.path.join(maildir, "INBOX", "cur", base + ":2,FS"))
    with open(os.path.join(maildir, "INBOX", "new", "1700000000.local.test"), "wb") as fh:
        fh.write(message("from the laptop"))
    # Server-side change to pull in the same run.
    m = stack.connect()
    ok(m.select("INBOX"))
    ok(m.store("1", "+FLAGS", "(\\Answered)"))
    m.logout()

    mbsync(tmp_path, stack)
    assert imap_view(stack, "INBOX") == {
        "first": ["\\Answered", "\\Seen"], "second": ["\\Flagged", "\\Seen"], "third": ["\\Flagged"],
        "from the laptop": []}
    local, _ = maildir_view(maildir / "INBOX")
    assert local["first"] == ["\\Answered", "\\Seen"]
    assert set(local) == {"first", "second", "third", "from the laptop"}


@pytest.mark.skipif(not shutil.which("mutt"), reason="mutt not installed")
def test_mutt_reads_and_moves(stack, tmp_path):
    m = stack.connect()
    ok(m.append("INBOX", None, None, message("keep me")))
    ok(m.append("INBOX", None, None, message("move me")))
    m.logout()
    home = tmp_path / "mutthome"
    home.mkdir()
    rc = home / "muttrc"
    url = f"imap://{USER.replace('@', '%40')}@127.0.0.1:{stack.port}"
    rc.write_text(f"""set imap_pass="{PASSWORD}"
set ssl_starttls=no
set ssl_force_tls=no
set folder="{url}/"
set spoolfile="{url}/INBOX"
set confirmappend=no
set move=no
set mbox_type=Maildir
set header_cache=""
set message_cachedir=""
set delete=yes
set quit=yes
# Batch: tag "move me", save it to Archive (marks it deleted), sync (expunges), leave.
push "<tag-pattern>~s move<enter><tag-prefix><save-message>=Archive<enter><sync-mailbox><exit>"
""")
    env = dict(os.environ, HOME=str(home), TERM="vt100")
    # mutt needs a terminal: script(1) gives it one.
    r = subprocess.run(["script", "-qec", f"mutt -n -F {rc}", "/dev/null"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, env=env, timeout=60, stdin=subprocess.DEVNULL)
    archive = imap_view(stack, "Archive")
    inbox = imap_view(stack, "INBOX")
    assert "move me" in archive, r.stdout.decode("utf-8", "replace")[-2000:]
    assert "move me" not in inbox and "keep me" in inbox
