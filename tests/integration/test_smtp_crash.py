"""The crash test of mail-smtpd's durability promise: several clients send
messages and count every 250; mail-stored and mail-smtpd are killed with
SIGKILL at random moments and restarted; afterwards every acknowledged message
is in its mailbox exactly once (and no message is there twice). Read back over
IMAP, so it needs mail-imapd."""
import imaplib
import os
import random
import re
import signal
import socket
import threading
import time

import pytest

from conftest import hand_over, port_open, start_stored, wait_for
from test_smtp import JOE, ANN, PASSWORD, stack  # noqa: F401  (the fixture)

CLIENTS = 4
ATTEMPTS_PER_CLIENT = int(os.environ.get("SMTP_CRASH_ATTEMPTS", "750"))


def restart_stored(stack, daemons, tmp_path):
    stack.stored = start_stored(daemons, stack.datadir, tmp_path / "stored.log")
    hand_over(stack.datadir)  # its new socket, for the daemons running as the mail user


def restart_smtpd(stack, daemons, tmp_path):
    stack.smtpd = daemons.start(stack.smtpd.argv, log=str(tmp_path / "smtpd.log"))
    wait_for(lambda: port_open(stack.mx) or not stack.smtpd.alive(), timeout=30, what="mail-smtpd port")
    assert stack.smtpd.alive(), stack.smtpd.log_text()


def client(port, cid, acked, attempts):
    """Sends `attempts` distinct messages; records the ids that got a 250."""
    sock, buf = None, b""

    def reply():
        nonlocal buf
        while True:
            while b"\r\n" not in buf:
                chunk = sock.recv(65536)
                if not chunk:
                    raise EOFError
                buf += chunk
            line, buf = buf.split(b"\r\n", 1)
            if len(line) < 4 or line[3:4] != b"-":
                return int(line[:3])

    n = 0
    while n < attempts:
        try:
            if sock is None:
                sock = socket.create_connection(("127.0.0.1", port), timeout=20)
                buf = b""
                if reply() != 220:
                    raise EOFError
                sock.sendall(b"EHLO crash.example\r\n")
                if reply() != 250:
                    raise EOFError
            msg_id = f"c{cid}-{n}"
            n += 1
            rcpt = JOE if n % 2 else ANN
            sock.sendall(f"MAIL FROM:<crash@remote.example>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode())
            if [reply(), reply(), reply()] != [250, 250, 354]:
                sock.sendall(b"RSET\r\n")
                reply()
                time.sleep(0.05)  # the store is restarting: 451, try the next message a little later
                continue
            sock.sendall(f"Subject: {msg_id}\r\n\r\n".encode() + b"x" * 2000 + b"\r\n.\r\n")
            if reply() == 250:
                acked.append((rcpt, msg_id))
        except (OSError, EOFError, ValueError):
            if sock is not None:
                sock.close()
            sock = None
            time.sleep(0.05)
    if sock is not None:
        sock.close()


def mailbox_subjects(port, user):
    for attempt in range(5):  # the first call after a store restart may find the old connection dead
        m = imaplib.IMAP4("127.0.0.1", port, timeout=60)
        try:
            m.login(user, PASSWORD)
            break
        except imaplib.IMAP4.error:
            m.shutdown()
            if attempt == 4:
                raise
            time.sleep(0.5)
    typ, data = m.select("INBOX")
    count = int(data[0])
    subjects = []
    if count:
        typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        for item in data:
            if isinstance(item, tuple):
                found = re.search(rb"Subject: (\S+)", item[1])
                subjects.append(found.group(1).decode() if found else "?")
    m.logout()
    return count, subjects


def test_acknowledged_messages_survive_sigkill(stack, daemons, tmp_path):
    if stack.imap is None:
        pytest.skip("mail-imapd is not built")
    acked = []
    threads = [threading.Thread(target=client, args=(stack.mx, c, acked, ATTEMPTS_PER_CLIENT))
               for c in range(CLIENTS)]
    for t in threads:
        t.start()
    rng = random.Random(5)
    kills = {"mail-stored": 0, "mail-smtpd": 0}
    while any(t.is_alive() for t in threads):
        time.sleep(rng.uniform(0.05, 0.2) if sum(kills.values()) < 2 else rng.uniform(0.2, 0.8))
        if not any(t.is_alive() for t in threads):
            break
        # The first two kills hit one daemon each, so both are always killed at
        # least once however fast the clients are; after that, at random.
        kill_store = (kills["mail-stored"] == 0) if sum(kills.values()) < 2 else rng.random() < 0.5
        if kill_store:
            stack.stored.kill(signal.SIGKILL)
            kills["mail-stored"] += 1
            time.sleep(rng.uniform(0, 0.3))
            restart_stored(stack, daemons, tmp_path)
        else:
            stack.smtpd.kill(signal.SIGKILL)
            kills["mail-smtpd"] += 1
            time.sleep(rng.uniform(0, 0.3))
            restart_smtpd(stack, daemons, tmp_path)
    for t in threads:
        t.join()
    assert kills["mail-stored"] > 0 and kills["mail-smtpd"] > 0
    assert len(acked) > CLIENTS * ATTEMPTS_PER_CLIENT // 4, f"only {len(acked)} acknowledged; kills {kills}"

    # mail-imapd has been running since the start, through the store's restarts.
    port = stack.imap
    assert port is not None and port_open(port), "mail-imapd is not answering"
    for user in (JOE, ANN):
        count, subjects = mailbox_subjects(port, user)
        assert count == len(subjects)
        seen = {}
        for s in subjects:
            seen[s] = seen.get(s, 0) + 1
        twice = [s for s, c in seen.items() if c > 1]
        assert not twice, f"stored more than once: {twice[:10]}"
        mine = [m for (r, m) in acked if r == user]
        missing = [m for m in mine if m not in seen]
        assert not missing, f"{len(missing)} acknowledged messages lost, e.g. {missing[:10]}; kills {kills}"
    print(f"crash test: {len(acked)} of {CLIENTS * ATTEMPTS_PER_CLIENT} acknowledged, kills {kills}")
