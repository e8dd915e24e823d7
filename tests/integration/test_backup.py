"""mail-backup as cron and an admin use it: silent on success; verify names a
damaged chunk; a wrong key is its own error; restore into an empty data
directory gives back the same mail (whole, or through an incremental chain);
a backup taken while mail-stored receives messages holds every message
committed before it began and no partial one; two runs never overlap."""
import json
import mailbox
import os
import threading

import pytest

from test_import import USER, exp, imp, provision, write_python_mbox

EX_DATAERR, EX_TEMPFAIL, EX_NOPERM = 65, 75, 77


def backup(run, *args, code=0):
    r = run("mail-backup", *args)
    assert r.returncode == code, (args, r.returncode, r.stderr.decode())
    return r


def mbox_export(run, datadir, tmp_path, name, *extra):
    """All mailboxes as mbox files: {file: sorted message bytes}."""
    out = tmp_path / ("export-" + name)
    exp(run, datadir, *extra, "--type", "mbox", str(out) + "/")
    files = {}
    for f in sorted(os.listdir(out)):
        box = mailbox.mbox(str(out / f), create=False)
        files[f] = sorted(box.get_bytes(k) for k in box.keys())
    return files


@pytest.fixture
def key(run, tmp_path):
    path = tmp_path / "backup.key"
    backup(run, "keygen", path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    return str(path)


def test_full_backup_verify_restore(datadir, run, tmp_path, key):
    provision(run, datadir, "--offline")
    write_python_mbox(tmp_path / "in.mbox", 40)
    imp(run, datadir, tmp_path / "in.mbox")
    r = backup(run, "--data-dir", datadir, "--key-file", key, "create", tmp_path / "backups")
    assert r.stdout == b"" and r.stderr == b"", "silent on success"
    listed = json.loads(backup(run, "--format", "json", "list", tmp_path / "backups").stdout)
    assert len(listed) == 1 and listed[0]["kind"] == "full"
    path = listed[0]["path"]
    backup(run, "--key-file", key, "verify", path)

    restored = str(tmp_path / "restored")
    r = backup(run, "--data-dir", restored, "--key-file", key, "restore", path)
    assert mbox_export(run, restored, tmp_path, "after") == mbox_export(run, datadir, tmp_path, "before")
    # The password came back with the account.
    r = run("mailctl", "--data-dir", restored, "account", "show", USER)
    assert r.returncode == 0, r.stderr
    # Everything only into an empty data directory.
    r = backup(run, "--data-dir", restored, "--key-file", key, "restore", path, code=EX_DATAERR)
    assert b"not empty" in r.stderr


def test_flipped_byte_and_wrong_key(datadir, run, tmp_path, key):
    provision(run, datadir, "--offline")
    write_python_mbox(tmp_path / "in.mbox", 60)
    imp(run, datadir, tmp_path / "in.mbox")
    backup(run, "--data-dir", datadir, "--key-file", key, "create", tmp_path / "b")
    path = [str(p) for p in (tmp_path / "b").iterdir() if p.suffix == ".mbak"][0]
    data = bytearray(open(path, "rb").read())
    at = data.find(b"chunks/000001")
    assert at > 0
    data[(at // 512 + 1) * 512 + 200] ^= 0x10
    bad = tmp_path / "bad.mbak"
    bad.write_bytes(bytes(data))
    r = backup(run, "--key-file", key, "verify", bad, code=EX_DATAERR)
    err = r.stderr.decode()
    assert err.count("\n") == 1 and "chunks/000001: damaged" in err, err

    other = tmp_path / "other.key"
    backup(run, "keygen", other)
    r = backup(run, "--key-file", other, "verify", path, code=EX_NOPERM)
    assert b"wrong key or passphrase" in r.stderr
    r = backup(run, "--data-dir", str(tmp_path / "x"), "--key-file", other, "restore", path, code=EX_NOPERM)

    # Passphrases work too (argon2id), from a file or the environment.
    pp = tmp_path / "pass"
    pp.write_text("correct horse battery staple\n")
    backup(run, "--data-dir", datadir, "--passphrase-file", pp, "create", tmp_path / "p")
    p = [str(x) for x in (tmp_path / "p").iterdir() if x.suffix == ".mbak"][0]
    backup(run, "--passphrase-file", pp, "verify", p)
    env = dict(os.environ, MAIL_BACKUP_PASSPHRASE="wrong")
    r = run("mail-backup", "verify", p, env=env)
    assert r.returncode == EX_NOPERM


def test_incremental_chain_of_three_restores_like_a_full_backup(datadir, run, tmp_path, key):
    provision(run, datadir, "--offline")
    write_python_mbox(tmp_path / "a.mbox", 10)
    imp(run, datadir, tmp_path / "a.mbox")
    backup(run, "--data-dir", datadir, "--key-file", key, "create", tmp_path / "b")
    for i, n in enumerate([5, 7]):
        box = mailbox.mbox(str(tmp_path / f"more{i}.mbox"))
        for j in range(n):
            box.add(mailbox.mboxMessage(f"Subject: more {i} {j}\n\nbody {i} {j}\n"))
        box.flush()
        imp(run, datadir, "-m", f"Folder{i}", tmp_path / f"more{i}.mbox")
        backup(run, "--data-dir", datadir, "--key-file", key, "create", "--incremental", tmp_path / "b")
    listed = json.loads(backup(run, "--format", "json", "list", tmp_path / "b").stdout)
    assert [b["kind"] for b in listed] == ["full", "incremental", "incremental"]
    assert listed[2]["parent"] == listed[1]["id"] and listed[1]["parent"] == listed[0]["id"]
    backup(run, "--data-dir", datadir, "--key-file", key, "create", tmp_path / "full")
    full = [str(x) for x in (tmp_path / "full").iterdir() if x.suffix == ".mbak"][0]

    backup(run, "--data-dir", str(tmp_path / "r1"), "--key-file", key, "restore", listed[2]["path"])
    backup(run, "--data-dir", str(tmp_path / "r2"), "--key-file", key, "restore", full)
    want = mbox_export(run, datadir, tmp_path, "src")
    assert mbox_export(run, str(tmp_path / "r1"), tmp_path, "chain") == want
    assert mbox_export(run, str(tmp_path / "r2"), tmp_path, "full") == want

    # One mailbox, under a new name, into the live store.
    backup(run, "--data-dir", datadir, "--key-file", key, "restore", "--account", USER, "--mailbox", "Folder1",
           "--as", "Folder1-restored", listed[2]["path"])
    after = mbox_export(run, datadir, tmp_path, "after")
    assert after["Folder1-restored.mbox"] == want["Folder1.mbox"]

    # prune never breaks the chain: keeping one day keeps all three.
    r = backup(run, "-v", "prune", "--keep-daily", "1", tmp_path / "b")
    assert r.stdout == b""
    assert len(json.loads(backup(run, "--format", "json", "list", tmp_path / "b").stdout)) == 3


def test_backup_while_delivering_through_the_daemon(datadir, run, stored, tmp_path, key):
    provision(run, datadir)
    write_python_mbox(tmp_path / "first.mbox", 30)
    imp(run, datadir, "--online", tmp_path / "first.mbox")
    before = mbox_export(run, datadir, tmp_path, "before", "--online")["INBOX.mbox"]

    stop = threading.Event()
    delivered = []

    def deliver():
        i = 0
        while not stop.is_set():
            msg = f"Subject: during {i}\n\n" + "y" * (i * 37) + "\n"
            r = run("mail-import", "--data-dir", datadir, "--online", "-a", USER, "-q", "-", input=msg)
            if r.returncode == 0:
                delivered.append(i)
            i += 1

    t = threading.Thread(target=deliver)
    t.start()
    try:
        backup(run, "--data-dir", datadir, "--online", "--key-file", key, "create", tmp_path / "b")
    finally:
        stop.set()
        t.join()
    path = [str(x) for x in (tmp_path / "b").iterdir() if x.suffix == ".mbak"][0]
    backup(run, "--key-file", key, "verify", path)
    restored = str(tmp_path / "restored")
    backup(run, "--data-dir", restored, "--key-file", key, "restore", path)
    got = mbox_export(run, restored, tmp_path, "got")["INBOX.mbox"]
    # Everything committed before the backup began, and only whole messages after.
    assert set(before) <= set(got)
    for m in got:
        if m not in before:
            body = m.split(b"\n\n", 1)[1]
            n = int(m.split(b"Subject: during ", 1)[1].split(b"\n", 1)[0])
            assert body == b"y" * (n * 37) + b"\n"


def test_lock_and_usage(run, tmp_path, key, datadir):
    provision(run, datadir, "--offline")
    (tmp_path / "b").mkdir()
    import fcntl
    with open(tmp_path / "b" / ".mail-backup.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        r = backup(run, "--data-dir", datadir, "--key-file", key, "create", tmp_path / "b", code=EX_TEMPFAIL)
        assert r.stderr.decode().count("\n") == 1 and b"another mail-backup" in r.stderr
    r = run("mail-backup", "--data-dir", datadir, "create", tmp_path / "b")
    assert r.returncode == 64 and b"no key" in r.stderr


def test_backup_to_stdout_and_verify_from_stdin(datadir, run, tmp_path, key):
    provision(run, datadir, "--offline")
    write_python_mbox(tmp_path / "in.mbox", 12)
    imp(run, datadir, tmp_path / "in.mbox")
    r = backup(run, "--data-dir", datadir, "--key-file", key, "create", "-")
    assert r.stderr == b"" and len(r.stdout) > 1024
    (tmp_path / "piped.mbak").write_bytes(r.stdout)
    r = run("mail-backup", "--key-file", key, "verify", "-", input=r.stdout)
    assert r.returncode == 0, r.stderr
    backup(run, "--data-dir", str(tmp_path / "restored"), "--key-file", key, "restore", tmp_path / "piped.mbak")
    assert mbox_export(run, str(tmp_path / "restored"), tmp_path, "after") == \
        mbox_export(run, datadir, tmp_path, "before")
    r = backup(run, "--data-dir", datadir, "--key-file", key, "create", "--incremental", "-", code=65)
    assert b"incremental" in r.stderr
