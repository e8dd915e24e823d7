"""Shared fixtures for the integration tests: they run the real executables.

Environment (set by ctest, or by hand):
  MAIL_BIN_DIR     where the built executables are (default: build/cmd)
  MAIL_SOURCE_DIR  the source tree
"""
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

SOURCE_DIR = os.environ.get(
    "MAIL_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BIN_DIR = os.environ.get("MAIL_BIN_DIR", os.path.join(SOURCE_DIR, "build", "cmd"))


def _testsuites():
    """The team's shared oracles: $MAIL_TESTSUITES, else ../shared/testsuites beside the
    project, else /work/shared/testsuites (where a clone elsewhere, like CI's, finds them)."""
    for candidate in (os.environ.get("MAIL_TESTSUITES"),
                      os.path.join(SOURCE_DIR, "..", "shared", "testsuites"),
                      "/work/shared/testsuites"):
        if candidate and os.path.isdir(candidate):
            return os.path.abspath(candidate)
    return os.path.abspath(os.path.join(SOURCE_DIR, "..", "shared", "testsuites"))


TESTSUITES = _testsuites()


def binary(name):
    """Path of a built executable; skips the test when it is not built."""
    path = os.path.join(BIN_DIR, name)
    if not os.path.exists(path):
        pytest.skip(f"{name} is not built in {BIN_DIR}")
    return path


def free_port():
    """A port free for both TCP and UDP on 127.0.0.1: DNS servers take both, and a
    UDP-only server of a test running beside us must not share the number."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port


def wait_for(predicate, timeout=10.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what}")


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def unix_socket_open(path):
    if not os.path.exists(path):
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(0.2)
            s.connect(path)
            return True
    except OSError:
        return False


class Daemon:
    """A real process started for a test; stopped (SIGTERM, then SIGKILL) at teardown."""

    def __init__(self, argv, env=None, log_path=None):
        self.argv = argv
        self.log_path = log_path
        self.log = open(log_path, "ab") if log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=self.log,
                                     env=env or os.environ.copy(), start_new_session=True)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.alive():
            self.proc.send_signal(sig)
        self.proc.wait(timeout=30)

    def stop(self, timeout=10):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log not in (None, subprocess.DEVNULL):
            self.log.close()
        return self.proc.returncode

    def log_text(self):
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


@pytest.fixture
def datadir(tmp_path):
    """An empty data directory for one test."""
    d = tmp_path / "data"
    d.mkdir()
    return str(d)


@pytest.fixture
def run():
    """run(name, *args, input=None, env=None) -> CompletedProcess of a built executable."""
    def _run(name, *args, input=None, env=None, timeout=60):
        if isinstance(input, str):
            input = input.encode()
        return subprocess.run([binary(name), *map(str, args)], input=input,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=env, timeout=timeout)
    return _run


@pytest.fixture
def daemons():
    """Starts daemons for a test and stops them all afterwards: daemons.start(argv, log=path)."""
    started = []

    class _Daemons:
        def start(self, argv, env=None, log=None):
            d = Daemon(argv, env=env, log_path=log)
            started.append(d)
            return d

    yield _Daemons()
    for d in reversed(started):
        d.stop()


def start_stored(daemons, datadir, log):
    """Starts mail-stored on `datadir` and waits for its socket; returns the Daemon."""
    d = daemons.start([binary("mail-stored"), "--data-dir", datadir], log=str(log))
    sock = os.path.join(datadir, "stored.sock")
    wait_for(lambda: unix_socket_open(sock) or not d.alive(), timeout=30, what="mail-stored socket")
    assert d.alive(), d.log_text()
    return d


@pytest.fixture
def stored(datadir, daemons, tmp_path):
    """A running mail-stored on `datadir`; yields the Daemon (socket: datadir/stored.sock)."""
    return start_stored(daemons, datadir, tmp_path / "stored.log")


def daemon_user():
    """The user daemons started as root drop to (general.user's default), or None
    when the tests do not run as root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("mail")
    except KeyError:
        pytest.skip("running as root without a 'mail' user for the daemons to drop to")


def hand_over(path):
    """Makes `path` the daemon user's, as mail-master does with the data directory."""
    pw = daemon_user()
    if pw is None:
        return
    for root, dirs, files in os.walk(path):
        os.chown(root, pw.pw_uid, pw.pw_gid)
        for name in dirs + files:
            os.lchown(os.path.join(root, name), pw.pw_uid, pw.pw_gid)


@pytest.fixture
def daemon_datadir(tmp_path):
    """A data directory the daemons can use after dropping privileges (as root:
    one outside pytest's directories, removed afterwards)."""
    if daemon_user() is None:
        d = str(tmp_path / "data")
        os.makedirs(d)
        yield d
        return
    d = tempfile.mkdtemp(prefix="mail-test-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def make_cert(datadir):
    """A self-signed certificate for localhost where the daemons look (DATADIR/tls)."""
    tls = os.path.join(datadir, "tls")
    os.makedirs(tls, exist_ok=True)
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=localhost", "-keyout", os.path.join(tls, "key.pem"),
                        "-out", os.path.join(tls, "cert.pem")],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert r.returncode == 0, r.stderr.decode()
    return True


class LineConn:
    """A socket read line by line (CRLF), for what smtplib and imaplib cannot express."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def line(self, timeout=20):
        self.sock.settimeout(timeout)
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; had " + repr(self.buf))
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")


def tls_context():
    """A client context that takes the test certificates."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """As root, each pytest session gets its own base directory for tmp_path.
    The shared /tmp/pytest-of-root is set back to 0700 by every session that
    starts (ctest runs several at once), which cut the daemons, dropped to `mail`,
    off from files of their test's directory in the middle of a test."""
    if os.geteuid() == 0 and not config.option.basetemp:
        config.option.basetemp = tempfile.mkdtemp(prefix="pytest-mailtk-")
        config.mailtk_own_basetemp = config.option.basetemp


def pytest_sessionfinish(session, exitstatus):
    own = getattr(session.config, "mailtk_own_basetemp", None)
    if own and exitstatus == 0:  # a failed session's files are kept to look at
        shutil.rmtree(own, ignore_errors=True)


@pytest.fixture(autouse=True)
def traversable_tmp_path(tmp_path):
    """Started as root, the daemons drop to the unprivileged `mail` user (they
    chown their data directory first); that user must be able to reach the test's
    directory, which pytest creates 0700 under a 0700 parent."""
    if os.geteuid() == 0:
        path = str(tmp_path)
        while path not in ("/", ""):
            mode = os.stat(path).st_mode
            os.chmod(path, mode | 0o011)
            path = os.path.dirname(path)
    return tmp_path
