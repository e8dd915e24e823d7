"""mail-stored: the store daemon. Start/stop, one owner per data directory, and
durability: what it acknowledged survives a SIGKILL, and nothing is half applied."""
import os
import signal
import stat
import subprocess

import pytest

from conftest import SOURCE_DIR, binary, start_stored, unix_socket_open, wait_for

BUILD_DIR = os.environ.get("MAIL_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))


def torture():
    path = os.path.join(BUILD_DIR, "tests", "tools", "store-torture")
    if not os.path.exists(path):
        pytest.skip(f"store-torture is not built in {BUILD_DIR}/tests/tools")
    return path


def test_start_and_graceful_stop(stored, datadir):
    sock = os.path.join(datadir, "stored.sock")
    mode = os.stat(sock).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o660
    assert stored.stop() == 0
    assert not os.path.exists(sock)
    assert "stopped" in stored.log_text()


def test_sigint_stops_too(stored, datadir):
    stored.proc.send_signal(signal.SIGINT)
    assert stored.proc.wait(timeout=10) == 0


def test_second_daemon_on_the_same_store_is_refused(stored, datadir, run):
    r = run("mail-stored", "--data-dir", datadir, timeout=30)
    assert r.returncode == 75, r.stderr
    assert r.stderr.decode().strip() == f"mail-stored: store is in use by pid {stored.pid}"
    # The first one is unharmed.
    assert stored.alive()
    assert unix_socket_open(os.path.join(datadir, "stored.sock"))


def test_deliveries_through_the_daemon(stored, datadir, tmp_path):
    sock = os.path.join(datadir, "stored.sock")
    acks = tmp_path / "acks"
    with open(acks, "wb") as out:
        r = subprocess.run([torture(), "deliver", "--socket", sock, "--threads", "8", "--count", "25"],
                           stdout=out, stderr=subprocess.PIPE, timeout=300)
    assert r.returncode == 0, r.stderr.decode()
    assert len(acks.read_text().splitlines()) == 200
    v = subprocess.run([torture(), "verify", "--socket", sock, "--acks", str(acks)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    assert v.returncode == 0, v.stdout.decode()


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


def test_sigkill_mid_stream_loses_nothing_acknowledged(daemons, datadir, tmp_path):
    """8 client threads deliver through the daemon; it is killed without warning
    while they write. After a restart every acknowledged delivery is there with
    its content, no delivery is in one of its two mailboxes only, and content
    reference counts and the store's counters match the references."""
    log = str(tmp_path / "stored.log")
    d = start_stored(daemons, datadir, log)
    sock = os.path.join(datadir, "stored.sock")
    acks = tmp_path / "acks"
    with open(acks, "wb") as out:
        writer = subprocess.Popen([torture(), "deliver", "--socket", sock, "--threads", "8"],
                                  stdout=out, stderr=subprocess.PIPE)
        try:
            # Kill once the stream is well under way, with writes in flight.
            wait_for(lambda: count_lines(acks) >= 400 or writer.poll() is not None, timeout=120,
                     what="400 acknowledged deliveries")
            assert writer.poll() is None, writer.stderr.read().decode()
            d.kill(signal.SIGKILL)
            writer.wait(timeout=60)
        finally:
            if writer.poll() is None:
                writer.kill()
                writer.wait()
    # The writers saw the daemon go away; they did not hang or crash.
    assert writer.returncode == 1
    assert b"unavailable" in writer.stderr.read()
    acked = count_lines(acks)
    assert acked >= 400

    # The killed daemon left its socket file behind; the new one replaces it.
    d2 = start_stored(daemons, datadir, log)
    v = subprocess.run([torture(), "verify", "--socket", sock, "--acks", str(acks)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    out = v.stdout.decode()
    assert v.returncode == 0, out
    assert f"verified {acked} acknowledged deliveries" in out
    assert d2.stop() == 0


def test_serves_an_inherited_socket(datadir, tmp_path, run):
    """Started the systemd way: the listening socket is fd 3, LISTEN_FDS=1."""
    import socket as socketlib
    path = str(tmp_path / "inherited.sock")
    listener = socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    fd = listener.fileno()

    def as_fd3():
        os.dup2(fd, 3)
        os.set_inheritable(3, True)

    env = dict(os.environ, LISTEN_FDS="1")
    env.pop("NOTIFY_SOCKET", None)
    log = open(tmp_path / "stored.log", "wb")
    # LISTEN_PID must be the daemon's own pid: set it in the shell that execs it.
    proc = subprocess.Popen(["/bin/sh", "-c", 'LISTEN_PID=$$ exec "$0" --data-dir "$1"',
                             binary("mail-stored"), datadir],
                            env=env, preexec_fn=as_fd3, pass_fds=(3,), stdout=log, stderr=log)
    try:
        listener.close()
        wait_for(lambda: "serving" in (tmp_path / "stored.log").read_text() or proc.poll() is not None,
                 timeout=30, what="mail-stored to serve")
        assert proc.poll() is None, (tmp_path / "stored.log").read_text()
        assert "an inherited socket" in (tmp_path / "stored.log").read_text()
        assert not os.path.exists(os.path.join(datadir, "stored.sock"))
        acks = tmp_path / "acks"
        with open(acks, "wb") as out:
            r = subprocess.run([torture(), "deliver", "--socket", path, "--threads", "2", "--count", "5"],
                               stdout=out, stderr=subprocess.PIPE, timeout=120)
        assert r.returncode == 0, r.stderr.decode()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert os.path.exists(path)  # an inherited socket's file is not ours to remove
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
