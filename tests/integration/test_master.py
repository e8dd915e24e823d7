"""mail-master: the supervised stack, run as an admin runs it."""
import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import Daemon, binary, free_port, port_open, unix_socket_open, wait_for


def control(datadir, request):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(os.path.join(datadir, "master.sock"))
        s.sendall(request.encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


def service(status, name):
    for s in status["services"]:
        if s["name"] == name:
            return s
    raise KeyError(name)


def write_config(path, datadir, smtp_ports, imap_ports, extra=""):
    mx, sub, subs = smtp_ports
    imap, imaps = imap_ports
    with open(path, "w") as f:
        f.write(f"""
[general]
data_dir = "{datadir}"

[smtp]
listen_mx = "127.0.0.1:{mx}"
listen_submission = "127.0.0.1:{sub}"
listen_submissions = "127.0.0.1:{subs}"

[imap]
listen = "127.0.0.1:{imap}"
listen_tls = "127.0.0.1:{imaps}"
{extra}
""")


class Stack:
    """A mail-master running on its own ports, stopped at teardown."""

    def __init__(self, datadir, tmp_path, drain=3, provision=None, extra=""):
        self.datadir = datadir
        self.config = str(tmp_path / "mail.toml")
        self.smtp_ports = (free_port(), free_port(), free_port())
        self.imap_ports = (free_port(), free_port())
        write_config(self.config, datadir, self.smtp_ports, self.imap_ports, extra)
        if provision:
            provision(self.config)
        self.master = Daemon([binary("mail-master"), "--config", self.config, "--drain", str(drain)],
                             log_path=str(tmp_path / "master.log"))
        wait_for(lambda: unix_socket_open(os.path.join(datadir, "master.sock")) or not self.master.alive(),
                 what="master control socket")
        assert self.master.alive(), self.master.log_text()
        wait_for(lambda: all(s["state"] == "running" for s in control(datadir, "status")["services"]),
                 what="every service running")


@pytest.fixture
def stack(datadir, tmp_path):
    binary("mail-stored")
    st = Stack(datadir, tmp_path)
    yield st
    st.master.stop(timeout=30)


def test_status_lists_running_services(stack):
    status = control(stack.datadir, "status")
    assert status["ok"] and status["version"] == 1
    names = [s["name"] for s in status["services"]]
    assert names[0] == "store"
    for s in status["services"]:
        assert s["state"] == "running" and s["pid"] > 0 and s["pss_kb"] > 0
    assert unix_socket_open(os.path.join(stack.datadir, "stored.sock"))
    if "imapd" in names:
        assert port_open(stack.imap_ports[0])


def test_killed_child_comes_back_within_a_second(stack):
    status = control(stack.datadir, "status")
    victim = status["services"][-1]
    os.kill(victim["pid"], signal.SIGKILL)
    start = time.monotonic()

    def back():
        s = service(control(stack.datadir, "status"), victim["name"])
        return s["state"] == "running" and s["pid"] not in (0, victim["pid"])

    wait_for(back, timeout=5, what="restart")
    assert time.monotonic() - start < 1.5
    assert service(control(stack.datadir, "status"), victim["name"])["restarts"] == 1


def test_stop_and_start_one_service(stack):
    names = [s["name"] for s in control(stack.datadir, "status")["services"]]
    name = names[-1]
    assert control(stack.datadir, f"stop {name}")["ok"]
    wait_for(lambda: service(control(stack.datadir, "status"), name)["state"] == "held", what="held")
    assert control(stack.datadir, f"start {name}")["ok"]
    wait_for(lambda: service(control(stack.datadir, "status"), name)["state"] == "running", what="running")
    answer = control(stack.datadir, "restart nosuch")
    assert not answer["ok"] and answer["code"] == "not_found"
    assert not control(stack.datadir, "frobnicate")["ok"]


def test_reload_keeps_unchanged_services(stack):
    before = {s["name"]: s["pid"] for s in control(stack.datadir, "status")["services"]}
    if "imapd" not in before:
        pytest.skip("mail-imapd is not built")
    new_imap = (free_port(), free_port())
    write_config(stack.config, stack.datadir, stack.smtp_ports, new_imap)
    stack.master.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: port_open(new_imap[0]), what="imapd on its new port")
    after = {s["name"]: s["pid"] for s in control(stack.datadir, "status")["services"]}
    assert after["store"] == before["store"]
    assert after["imapd"] != before["imapd"]
    if "smtpd" in before:
        assert after["smtpd"] == before["smtpd"]


def test_sigterm_stops_everything(stack):
    pids = [s["pid"] for s in control(stack.datadir, "status")["services"]]
    assert stack.master.stop(timeout=30) == 0
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not os.path.exists(os.path.join(stack.datadir, "master.sock"))
    log = stack.master.log_text()
    assert "stack stopped" in log


def test_crash_loop_is_throttled_while_store_serves(datadir, tmp_path):
    binary("mail-stored")
    binary("mail-imapd")
    config = str(tmp_path / "mail.toml")
    # A certificate that does not exist makes mail-imapd exit at start, every time.
    write_config(config, datadir, (free_port(), free_port(), free_port()), (free_port(), free_port()),
                 extra='\n[tls]\ncert_file = "/nonexistent/cert.pem"\nkey_file = "/nonexistent/key.pem"\n')
    master = Daemon([binary("mail-master"), "--config", config],
                    log_path=str(tmp_path / "master.log"))
    try:
        wait_for(lambda: unix_socket_open(os.path.join(datadir, "master.sock")), what="control socket")
        wait_for(lambda: service(control(datadir, "status"), "imapd")["state"] == "throttled",
                 timeout=15, what="imapd throttled")
        assert service(control(datadir, "status"), "store")["state"] == "running"
        assert unix_socket_open(os.path.join(datadir, "stored.sock"))
        assert "throttled" in master.log_text()
    finally:
        master.stop(timeout=30)


def test_mailctl_stack_and_logs(stack, run):
    out = run("mailctl", "--data-dir", stack.datadir, "stack", "status", "--format", "json")
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)
    assert status["services"][0]["name"] == "store"
    table = run("mailctl", "--data-dir", stack.datadir, "stack", "status")
    assert table.stdout.decode().splitlines()[0].split()[:3] == ["SERVICE", "STATE", "PID"]
    bad = run("mailctl", "--data-dir", stack.datadir, "stack", "restart", "nosuch")
    assert bad.returncode == 67 and b"no such service" in bad.stderr
    logs = run("mailctl", "--data-dir", stack.datadir, "logs", "store")
    assert logs.returncode == 0 and b"mail-stored[" in logs.stdout
    assert run("mailctl", "--data-dir", stack.datadir, "stack", "stop").returncode == 0
    stack.master.proc.wait(timeout=30)
    down = run("mailctl", "--data-dir", stack.datadir, "stack", "status")
    assert down.returncode == 69 and b"not running" in down.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def process_uids(pid):
    """Real, effective, saved and filesystem uid of a process."""
    with open(f"/proc/{pid}/status") as f:
        return [int(u) for u in next(line for line in f if line.startswith("Uid:")).split()[1:]]


def test_started_as_root_children_run_unprivileged(stack):
    import pwd
    mail_uid = pwd.getpwnam("mail").pw_uid

    for s in control(stack.datadir, "status")["services"]:
        # A child just forked is still root until it has taken its sockets and dropped.
        wait_for(lambda: process_uids(s["pid"]) == [mail_uid] * 4, timeout=5, what=f"{s['name']} to drop privileges")
    assert os.stat(os.path.join(stack.datadir, "db")).st_uid == mail_uid


def smtp_reply(sock):
    """Reads one (possibly multi-line) SMTP reply; returns (code, text)."""
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return 0, data.decode()
        data += chunk
        for line in data.split(b"\r\n")[:-1]:
            if len(line) >= 4 and line[3:4] == b" ":  # the last line of the first reply
                return int(line[:3]), data.decode()


@pytest.fixture
def smtp_stack(datadir, tmp_path, run):
    binary("mail-smtpd")

    def provision(config):
        assert run("mailctl", "--config", config, "--offline", "domain", "add", "example.test").returncode == 0
        assert run("mailctl", "--config", config, "--offline", "account", "add", "joe@example.test",
                   "--password-stdin", input="secret\n").returncode == 0

    st = Stack(datadir, tmp_path, drain=10, provision=provision)
    yield st
    st.master.stop(timeout=30)


def test_sigterm_lets_a_message_in_progress_finish(smtp_stack, run):
    s = socket.create_connection(("127.0.0.1", smtp_stack.smtp_ports[0]), timeout=20)
    assert smtp_reply(s)[0] == 220
    for command, code in ((b"EHLO client.test", 250), (b"MAIL FROM:<a@example.net>", 250),
                          (b"RCPT TO:<joe@example.test>", 250), (b"DATA", 354)):
        s.sendall(command + b"\r\n")
        assert smtp_reply(s)[0] == code, command
    s.sendall(b"Subject: drained\r\n\r\nfirst half\r\n")
    smtp_stack.master.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)  # the stack is stopping now; the session is mid-message
    s.sendall(b"second half\r\n.\r\n")
    code, text = smtp_reply(s)
    assert code == 250, text
    s.close()
    assert smtp_stack.master.proc.wait(timeout=30) == 0
    listed = run("mailctl", "--config", smtp_stack.config, "--offline", "--format", "json",
                 "account", "show", "joe@example.test")
    assert json.loads(listed.stdout)["used"]["messages"] == 1, listed.stdout


def test_reload_keeps_a_live_session_and_accepts_new_ones(smtp_stack):
    import smtplib
    client = smtplib.SMTP("127.0.0.1", smtp_stack.smtp_ports[0], timeout=20)
    client.ehlo("client.test")
    new_imap = (free_port(), free_port())
    write_config(smtp_stack.config, smtp_stack.datadir, smtp_stack.smtp_ports, new_imap)
    smtp_stack.master.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: port_open(new_imap[0]) or "imapd" not in
             [s["name"] for s in control(smtp_stack.datadir, "status")["services"]], what="reload")
    assert client.noop()[0] == 250
    client.sendmail("a@example.net", ["joe@example.test"], "Subject: after reload\r\n\r\nhi\r\n")
    client.quit()
    with smtplib.SMTP("127.0.0.1", smtp_stack.smtp_ports[0], timeout=20) as again:
        assert again.noop()[0] == 250


def test_a_daemon_runs_alone_with_listen(stored, datadir, daemons, tmp_path):
    port = free_port()
    smtpd = daemons.start([binary("mail-smtpd"), "--data-dir", datadir, "--listen", f"127.0.0.1:{port}"],
                          log=str(tmp_path / "smtpd.log"))
    wait_for(lambda: port_open(port) or not smtpd.alive(), what="mail-smtpd alone")
    assert smtpd.alive(), smtpd.log_text()
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    time.sleep(0.2)  # MX clients wait for the greeting
    assert smtp_reply(s)[0] == 220
    s.close()


def test_control_socket_serves_the_admin_table(stack, run):
    d = ["--data-dir", stack.datadir, "--master"]
    assert run("mailctl", *d, "domain", "add", "bücher.example").returncode == 0
    out = run("mailctl", *d, "account", "add", "ann@bücher.example", "--password-stdin", input="pw\n")
    assert out.returncode == 0, out.stderr
    listed = run("mailctl", *d, "--format", "json", "account", "list")
    assert [a["address"] for a in json.loads(listed.stdout)] == ["ann@xn--bcher-kva.example"]
    dup = run("mailctl", *d, "domain", "add", "bücher.example")
    assert dup.returncode == 65 and b"already exists" in dup.stderr
    missing = run("mailctl", *d, "account", "show", "nobody@bücher.example")
    assert missing.returncode == 67
    # The same operation as mailctl through the store daemon sees the same data.
    direct = run("mailctl", "--data-dir", stack.datadir, "--online", "--format", "json", "domain", "list")
    assert json.loads(direct.stdout)[0]["domain"] == "xn--bcher-kva.example"


def test_store_crash_makes_clients_reconnect_not_crash(smtp_stack):
    import smtplib
    before = {s["name"]: s["pid"] for s in control(smtp_stack.datadir, "status")["services"]}
    os.kill(before["store"], signal.SIGKILL)
    wait_for(lambda: service(control(smtp_stack.datadir, "status"), "store")["pid"] not in (0, before["store"])
             and service(control(smtp_stack.datadir, "status"), "store")["state"] == "running", what="store back")
    with smtplib.SMTP("127.0.0.1", smtp_stack.smtp_ports[0], timeout=20) as client:
        client.sendmail("a@example.net", ["joe@example.test"], "Subject: after a store crash\r\n\r\nhi\r\n")
    after = {s["name"]: s["pid"] for s in control(smtp_stack.datadir, "status")["services"]}
    assert after["smtpd"] == before["smtpd"], "mail-smtpd must survive the store's death"


def test_services_table_sets_processes_and_disables(datadir, tmp_path):
    binary("mail-smtpd")
    st = Stack(datadir, tmp_path, extra="[services.smtpd]\nprocesses = 2\n[services.imapd]\nenabled = false\n")
    try:
        status = control(datadir, "status")
        smtpd = service(status, "smtpd")
        assert smtpd["processes"] == 2 and len(set(smtpd["pids"])) == 2 and smtpd["state"] == "running"
        assert "imapd" not in [s["name"] for s in status["services"]]
        assert not port_open(st.imap_ports[0])
        # Both processes accept on the one handed-down socket.
        for _ in range(4):
            s = socket.create_connection(("127.0.0.1", st.smtp_ports[1]), timeout=10)
            assert smtp_reply(s)[0] == 220
            s.close()
        # Killing one restarts that one only.
        os.kill(smtpd["pids"][0], signal.SIGKILL)
        wait_for(lambda: len(service(control(datadir, "status"), "smtpd")["pids"]) == 2
                 and smtpd["pids"][0] not in service(control(datadir, "status"), "smtpd")["pids"]
                 and service(control(datadir, "status"), "smtpd")["state"] == "running", what="restart")
        assert smtpd["pids"][1] in service(control(datadir, "status"), "smtpd")["pids"]
        # Reload down to one process.
        write_config(st.config, datadir, st.smtp_ports, st.imap_ports, "[services.imapd]\nenabled = false\n")
        st.master.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: service(control(datadir, "status"), "smtpd")["processes"] == 1
                 and service(control(datadir, "status"), "smtpd")["state"] == "running", what="one smtpd")
    finally:
        st.master.stop(timeout=30)


# A program of the admin's own: it takes the socket the master hands down
# (fd 3, LISTEN_FDNAMES) and reports READY=1 on NOTIFY_SOCKET like an sd_notify daemon.
OWN_SERVICE = r"""
import os, socket, sys, time
time.sleep(0.3)  # not ready at once: the master must wait for READY=1
listener = socket.socket(fileno=3)
names = os.environ["LISTEN_FDNAMES"]
n = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
address = os.environ["NOTIFY_SOCKET"]
n.sendto(b"READY=1", "\0" + address[1:] if address.startswith("@") else address)
print("own service ready", flush=True)
while True:
    c, _ = listener.accept()
    c.sendall(f"{names} {os.environ['MAIL_DATA_DIR']} {' '.join(sys.argv[1:])}\n".encode())
    c.close()
"""


def test_a_service_that_never_reports_ready_is_killed_and_restarted(datadir, tmp_path):
    binary("mail-stored")
    config = str(tmp_path / "mail.toml")
    write_config(config, datadir, (free_port(), free_port(), free_port()), (free_port(), free_port()),
                 extra='[services.mute]\nprogram = "/bin/sleep"\nargs = ["3600"]\n')
    master = Daemon([binary("mail-master"), "--config", config, "--ready-timeout", "1"],
                    log_path=str(tmp_path / "master.log"))
    try:
        wait_for(lambda: len(re.findall(r"started mute \(pid", master.log_text())) >= 2, timeout=20,
                 what="mute started again")
        log = master.log_text()
        assert re.search(r"mute \(pid \d+\) did not report ready in 1 s; killing it", log), log
        status = control(datadir, "status")
        assert service(status, "mute")["state"] != "running", status
        assert all(service(status, n)["state"] == "running" for n in ("store", "smtpd", "imapd")), status
    finally:
        master.stop(timeout=30)
    r = subprocess.run([binary("mail-master"), "--ready-timeout", "0"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    assert r.returncode != 0 and b"ready-timeout" in r.stderr, r.stderr


def hello_stack(datadir, tmp_path, args=(), settings=""):
    """A Stack running OWN_SERVICE as [services.hello] (`settings`: more of its
    lines) on a free port; returns the Stack and the port."""
    script = tmp_path / "own.py"
    script.write_text(OWN_SERVICE)
    port = free_port()
    argv = ", ".join(f'"{a}"' for a in (str(script), *args))
    st = Stack(datadir, tmp_path, extra=f'[services.hello]\nprogram = "/usr/bin/python3"\n{settings}'
                                        f'args = [{argv}]\nlisten = ["greet=127.0.0.1:{port}"]\n')
    return st, port


def test_own_service_gets_sockets_environment_and_readiness(datadir, tmp_path):
    st, port = hello_stack(datadir, tmp_path, args=("--greeting", "hi"))
    try:
        hello = service(control(datadir, "status"), "hello")
        assert hello["state"] == "running" and hello["listen"] == [f"greet=127.0.0.1:{port}"]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            assert s.makefile().readline().split() == ["greet", datadir, "--greeting", "hi"]
        assert "own service ready" in st.master.log_text()
    finally:
        st.master.stop(timeout=30)


def test_a_service_runs_as_its_own_user(datadir, tmp_path):
    """[services.NAME] user: that service alone runs as that user; the rest as general.user."""
    import pwd
    if os.geteuid() != 0:
        pytest.skip("needs root")
    st, port = hello_stack(datadir, tmp_path, settings='user = "nobody"\n')
    try:
        status = control(datadir, "status")
        hello = service(status, "hello")
        assert hello["state"] == "running"
        assert process_uids(hello["pid"]) == [pwd.getpwnam("nobody").pw_uid] * 4
        # The root-bound socket was handed down before the drop: the service answers.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            assert s.makefile().readline().startswith("greet ")
        mail_uid = pwd.getpwnam("mail").pw_uid
        wait_for(lambda: process_uids(service(control(datadir, "status"), "smtpd")["pid"]) == [mail_uid] * 4,
                 timeout=5, what="smtpd to drop to general.user")
    finally:
        st.master.stop(timeout=30)


# The store's program: waits for the test's go-ahead, then becomes the real
# mail-stored (same pid, so its READY=1 is the store's).
SLOW_STORE = r"""
import os, sys, time
while not os.path.exists(sys.argv[2]):
    time.sleep(0.02)
os.execv(sys.argv[1], [sys.argv[1], "--data-dir", os.environ["MAIL_DATA_DIR"]])
"""


def test_control_socket_answers_while_the_store_starts(datadir, tmp_path):
    stored = binary("mail-stored")
    binary("mail-smtpd")
    script = tmp_path / "slow_store.py"
    script.write_text(SLOW_STORE)
    go = tmp_path / "go"
    config = str(tmp_path / "mail.toml")
    write_config(config, datadir, (free_port(), free_port(), free_port()), (free_port(), free_port()),
                 extra=f'[services.store]\nprogram = "/usr/bin/python3"\nargs = ["{script}", "{stored}", "{go}"]\n')
    master = Daemon([binary("mail-master"), "--config", config], log_path=str(tmp_path / "master.log"))
    try:
        wait_for(lambda: unix_socket_open(os.path.join(datadir, "master.sock")), what="control socket")
        # The master serves its control socket while the store is not ready,
        # and holds the other daemons back until it is.
        status = control(datadir, "status")
        assert service(status, "store")["state"] == "starting"
        assert service(status, "smtpd")["state"] == "waiting" and service(status, "smtpd")["pid"] == 0
        go.write_text("")
        wait_for(lambda: all(s["state"] == "running" for s in control(datadir, "status")["services"]),
                 what="the stack running once the store is ready")
        assert "stack started in" in master.log_text()
    finally:
        master.stop(timeout=30)


def test_mailctl_logs_follow_shows_new_lines(stack):
    follow = subprocess.Popen([binary("mailctl"), "--data-dir", stack.datadir, "logs", "-f", "-n", "0", "smtpd"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(0.5)  # following from the end of the log now
        assert control(stack.datadir, "restart smtpd")["ok"]
        lines = []
        deadline = time.monotonic() + 10
        def seen():
            return any("mail-smtpd[" in line and "listening on" in line for line in lines)
        while time.monotonic() < deadline and not seen():
            lines.append(follow.stdout.readline().decode())
        assert seen(), lines
        assert not any("mail-stored[" in line for line in lines), "only the service asked for"
    finally:
        follow.kill()
        follow.wait()


def test_systemd_units_verify(tmp_path):
    """The shipped units parse, name real programs and sockets (systemd-analyze verify)."""
    import shutil
    import subprocess
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    binary("mail-master")
    source = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "systemd")
    config = tmp_path / "mail.toml"
    config.write_text("")
    units = []
    for name in sorted(os.listdir(source)):
        text = open(os.path.join(source, name)).read()
        text = text.replace("/usr/local/bin", os.path.dirname(binary("mail-master")))
        text = text.replace("/etc/mailtk/mail.toml", str(config))
        (tmp_path / name).write_text(text)
        units.append(str(tmp_path / name))
    out = subprocess.run(["systemd-analyze", "verify", "--man=no", *units], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and not out.stderr.strip() and not out.stdout.strip(), out.stdout + out.stderr
