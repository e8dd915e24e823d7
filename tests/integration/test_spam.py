"""mail-spamscore: training from files, mboxes and Maildirs, checking with its
output forms and exit codes, per-account models, rule files, the store offline
and through mail-stored, and bad input. Messages are generated (a small,
varied set) so the test needs no corpus."""
import imaplib
import json
import random
import smtplib
import threading
import time

import pytest
from conftest import binary, free_port, hand_over, make_cert, port_open, wait_for

EX_USAGE, EX_NOINPUT, EX_NOUSER, EX_CONFIG = 64, 66, 67, 78
USER = "user@example.test"

SPAM_WORDS = ("viagra cheap pills discount offer winner prize casino loan credit mortgage bonus "
              "free money guaranteed limited unsubscribe replica watches pharmacy lottery").split()
HAM_WORDS = ("meeting review patch kernel compiler release notes schedule lunch project budget "
             "thanks attached draft agenda minutes deploy branch merge tests design").split()


def message(kind, i, rng):
    words = SPAM_WORDS if kind == "spam" else HAM_WORDS
    body = " ".join(rng.choice(words) for _ in range(60))
    if kind == "spam":
        return (f"From: Offers <promo{i}@deals{i % 7}.example>\nTo: {USER}\n"
                f"Subject: {rng.choice(words)} {rng.choice(words)} now\n\n"
                f"{body}\nhttp://deals{i % 7}.example/click?id={i}\n")
    return (f"From: Alice <alice@example.org>\nTo: {USER}\nSubject: {rng.choice(words)} notes {i}\n"
            f"Date: Mon, 2 Mar 2026 10:{i % 60:02d}:00 +0000\nMessage-ID: <m{i}@example.org>\n\n{body}\n")


@pytest.fixture
def corpus(tmp_path):
    rng = random.Random(10)
    out = {}
    for kind in ("spam", "ham"):
        d = tmp_path / kind
        d.mkdir()
        for i in range(12):
            (d / f"{i}.eml").write_text(message(kind, i, rng))
        out[kind] = d
    # The spam again as an mbox, the ham as a Maildir (other reader paths).
    with open(tmp_path / "spam.mbox", "w") as f:
        for i in range(12, 18):
            f.write("From promo@deals.example Mon Mar  2 10:00:00 2026\n" + message("spam", i, rng) + "\n")
    md = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True)
    for i in range(12, 18):
        (md / "cur" / f"{i}.host:2,S").write_text(message("ham", i, rng))
    out["mbox"] = tmp_path / "spam.mbox"
    out["maildir"] = md
    out["test_spam"] = message("spam", 99, rng)
    out["test_ham"] = message("ham", 99, rng)
    return out


@pytest.fixture
def store_dir(datadir, run):
    r = run("mailctl", "--data-dir", datadir, "--offline", "domain", "add", "example.test")
    assert r.returncode == 0, r.stderr.decode()
    r = run("mailctl", "--data-dir", datadir, "--offline", "account", "add", USER, "--password-stdin",
            input="pw\n")
    assert r.returncode == 0, r.stderr.decode()
    return datadir


def spamscore(run, datadir, *args, input=None, code=0):
    r = run("mail-spamscore", "--data-dir", datadir, *args, input=input)
    assert r.returncode == code, (args, r.returncode, r.stdout.decode(), r.stderr.decode())
    return r


def train_all(run, datadir, corpus, *extra):
    out = json.loads(spamscore(run, datadir, "train", "--spam", "--format", "json", *extra,
                               *sorted(str(p) for p in corpus["spam"].iterdir())).stdout)
    assert out["read"] == 12 and out["learned"] == 12, out
    out = json.loads(spamscore(run, datadir, "train", "--ham", "--format", "json", *extra,
                               str(corpus["maildir"]), str(corpus["ham"])).stdout)
    assert out["read"] == 18 and out["learned"] == 18, out
    out = json.loads(spamscore(run, datadir, "train", "--spam", "--format", "json", *extra,
                               str(corpus["mbox"])).stdout)
    assert out["learned"] == 6, out


def mail_config(tmp_path, store_dir, text):
    config = tmp_path / "mail.toml"
    config.write_text(f'[general]\ndata_dir = "{store_dir}"\n' + text)
    return str(config)


def serve(daemons, store_dir, tmp_path, config=None, smtpds=1, imap=False):
    """Starts `smtpds` mail-smtpd (an mx listener each) and, with `imap`, a
    mail-imapd on the store; returns (the mx ports, the IMAP port)."""
    if config:
        make_cert(store_dir)
        hand_over(store_dir)
    args = ["--data-dir", store_dir] + (["--config", config] if config else [])
    mx = [free_port() for _ in range(smtpds)]
    procs = [daemons.start([binary("mail-smtpd"), *args, "--listen", f"mx=127.0.0.1:{port}"],
                           log=str(tmp_path / f"smtpd{i}.log")) for i, port in enumerate(mx)]
    imap_port = free_port() if imap else None
    if imap:
        procs.append(daemons.start([binary("mail-imapd"), *args, "--listen", f"imap=127.0.0.1:{imap_port}"],
                                   log=str(tmp_path / "imapd.log")))
    ports = mx + ([imap_port] if imap else [])
    wait_for(lambda: all(port_open(p) for p in ports) or not all(d.alive() for d in procs), what="daemon ports")
    for d in procs:
        assert d.alive(), d.log_text()
    return mx, imap_port


def add_users(run, store_dir, users):
    for u in users:
        r = run("mailctl", "--data-dir", store_dir, "account", "add", u, "--password-stdin", input="pw\n")
        assert r.returncode == 0, r.stderr.decode()


def parcel_notice(name):
    """One bulk body, personalized with the recipient's name."""
    return (f"From: Parcel Service <track@parcels.example>\r\nTo: {name}\r\nSubject: Your parcel\r\n"
            "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <p@parcels.example>\r\n\r\n"
            f"Dear {name}, your parcel 4711 could not be delivered because the address was incomplete.\r\n"
            "Please confirm your details within two days or the parcel returns to the sender.\r\n")


def spam_status(imap_port, user, num="1"):
    """The X-Spam-Status field of message `num` in user's INBOX, unfolded."""
    m = imaplib.IMAP4("127.0.0.1", imap_port, timeout=20)
    m.login(user, "pw")
    m.select("INBOX")
    typ, data = m.fetch(num, "(BODY.PEEK[HEADER.FIELDS (X-Spam-Status)])")
    m.logout()
    assert typ == "OK", data
    return " ".join(data[0][1].decode().split())


def test_train_check_untrain_offline(run, store_dir, corpus):
    # Before any training, Bayes says nothing.
    out = json.loads(spamscore(run, store_dir, "--format", "json", input=corpus["test_spam"]).stdout)
    assert out["bayes"]["used"] is False
    train_all(run, store_dir, corpus)
    stats = json.loads(spamscore(run, store_dir, "stats", "--format", "json").stdout)
    assert stats["spam_messages"] == 18 and stats["ham_messages"] == 18 and stats["tokens"] > 20

    # Training the same message again counts once.
    again = json.loads(spamscore(run, store_dir, "train", "--spam", "--format", "json",
                                 str(corpus["mbox"])).stdout)
    assert again["skipped"] == 6 and again["learned"] == 0

    out = json.loads(spamscore(run, store_dir, "--format", "json", "--clues", "3",
                               input=corpus["test_spam"], code=1).stdout)
    assert out["verdict"] == "spam" and out["score"] >= out["required"]
    assert out["bayes"]["probability"] > 0.9 and len(out["bayes"]["clues"]) == 3
    assert any(t["name"].startswith("BAYES_9") for t in out["tests"])
    out = json.loads(spamscore(run, store_dir, "check", "--format", "json", input=corpus["test_ham"]).stdout)
    assert out["verdict"] == "ham" and out["bayes"]["probability"] < 0.1

    table = spamscore(run, store_dir, input=corpus["test_spam"], code=1).stdout.decode()
    assert table.startswith("spam score=") and "BAYES_99" in table
    headers = spamscore(run, store_dir, "--format", "headers", input=corpus["test_ham"]).stdout.decode()
    assert headers.startswith("X-Spam-Status: No, score=") and "\nX-Spam-Score: " in headers

    # --filter: the message with the fields on top, as a pipe filter.
    filtered = spamscore(run, store_dir, "--filter", input=corpus["test_spam"], code=1).stdout.decode()
    assert filtered.startswith("X-Spam-Status: Yes")
    assert filtered.endswith(corpus["test_spam"])

    # untrain forgets (the mbox's six spam).
    out = json.loads(spamscore(run, store_dir, "untrain", "--format", "json", str(corpus["mbox"])).stdout)
    assert out["unlearned"] == 6
    stats = json.loads(spamscore(run, store_dir, "stats", "--format", "json").stdout)
    assert stats["spam_messages"] == 12


def test_per_account_and_through_stored(run, store_dir, corpus, stored):
    # mail-stored runs: the same commands go through it.
    train_all(run, store_dir, corpus, "--account", USER)
    account = json.loads(spamscore(run, store_dir, "--online", "stats", "-a", USER, "--format", "json").stdout)
    assert account["spam_messages"] == 18
    glob = json.loads(spamscore(run, store_dir, "stats", "--format", "json").stdout)
    assert glob["spam_messages"] == 0
    # The global model knows nothing; the account's does.
    out = json.loads(spamscore(run, store_dir, "--format", "json", input=corpus["test_spam"]).stdout)
    assert out["bayes"]["used"] is False
    out = json.loads(spamscore(run, store_dir, "--format", "json", "-a", USER, input=corpus["test_spam"],
                               code=1).stdout)
    assert out["verdict"] == "spam"
    # Offline is refused while mail-stored holds the store.
    r = spamscore(run, store_dir, "--offline", "stats", code=75)
    assert b"in use" in r.stderr


def test_rule_file_and_config(run, store_dir, tmp_path):
    rules = tmp_path / "rules.cf"
    rules.write_text("# local rules\nbody LOCAL_CRUISE /free cruise/i\nscore LOCAL_CRUISE 6\n"
                     "describe LOCAL_CRUISE offers a cruise\nscore MISSING_DATE 0\n"
                     "header LOCAL_MAILER X-Mailer /massmailer/i\n")
    config = tmp_path / "mail.toml"
    config.write_text(f'[general]\ndata_dir = "{store_dir}"\n[spam]\nrules_file = "{rules}"\n'
                      'required_score = "5.5"\n')
    msg = "From: a@b.example\nSubject: hello\nX-Mailer: MassMailer 2\n\nWin a FREE CRUISE today\n"
    out = json.loads(spamscore(run, store_dir, "-c", str(config), "--no-store", "--format", "json",
                               input=msg, code=1).stdout)
    names = [t["name"] for t in out["tests"]]
    assert "LOCAL_CRUISE" in names and "LOCAL_MAILER" in names and "MISSING_DATE" not in names
    assert out["required"] == 5.5
    listed = json.loads(spamscore(run, store_dir, "-c", str(config), "rules", "--format", "json").stdout)
    assert {"name": "LOCAL_CRUISE", "score": 6.0, "description": "offers a cruise"} in listed

    rules.write_text("body OK /ok/\nbodyy TYPO /x/\n")
    r = spamscore(run, store_dir, "-c", str(config), "--no-store", input=msg, code=EX_CONFIG)
    assert b"rules.cf:2: unknown rule kind" in r.stderr
    config.write_text('[spam]\nrequired_score = "lots"\n')
    r = spamscore(run, store_dir, "-c", str(config), "--no-store", input=msg, code=EX_CONFIG)
    assert b"spam.required_score" in r.stderr


def test_errors(run, store_dir, tmp_path):
    r = spamscore(run, store_dir, "train", str(tmp_path), code=EX_USAGE)
    assert r.stderr.decode().count("\n") == 1
    spamscore(run, store_dir, "check", str(tmp_path / "missing.eml"), code=EX_NOINPUT)
    r = spamscore(run, store_dir, "-a", "nobody@example.test", input="Subject: x\n\nx\n", code=EX_NOUSER)
    assert r.stderr.decode().startswith("mail-spamscore: ")
    spamscore(run, store_dir, "--format", "xml", input="x", code=EX_USAGE)


def test_bad_input_gives_a_verdict(run, store_dir):
    rng = random.Random(7)
    deep = "Content-Type: multipart/mixed; boundary=a\n\n" + \
        "--a\nContent-Type: multipart/mixed; boundary=a\n\n" * 3000
    cases = {
        "garbage": bytes(rng.randrange(256) for _ in range(200000)),
        "deep": deep.encode(),
        "huge_header": b"Subject: " + b"A" * 2000000 + b"\n\nbody\n",
        "bad_encodings": (b"Subject: =?utf-8?B?!!!?= =?x-unknown?Q?=ZZ?=\nContent-Type: text/html; charset=bogus\n"
                          b"Content-Transfer-Encoding: base64\n\n%%%%not base64\xff\xfe<a href=http://[::1\n"),
        "empty": b"",
        "nul": b"\0" * 1000,
        "long_lines": b"Subject: x\n\n" + b"http://" + b"a." * 500000 + b"\n",
    }
    for name, data in cases.items():
        r = run("mail-spamscore", "--data-dir", store_dir, "--format", "json", input=data, timeout=60)
        assert r.returncode in (0, 1), (name, r.returncode, r.stderr.decode())
        out = json.loads(r.stdout)
        assert out["verdict"] in ("spam", "ham"), name


def test_smtp_filter_rejects_spam_and_accepts_ham(run, store_dir, corpus, stored, daemons, tmp_path):
    train_all(run, store_dir, corpus)
    config = mail_config(tmp_path, store_dir, '[spam]\nrequired_score = "4.0"\nreject_score = "6.0"\n')
    (mx,), _ = serve(daemons, store_dir, tmp_path, config)
    s = smtplib.SMTP("127.0.0.1", mx, timeout=20)
    s.ehlo("client.example")
    with pytest.raises(smtplib.SMTPDataError) as refused:
        s.sendmail("promo@deals.example", [USER], corpus["test_spam"])
    assert refused.value.smtp_code == 550 and b"5.7.1" in refused.value.smtp_error
    s.sendmail("alice@example.org", [USER], corpus["test_ham"])
    s.quit()
    r = run("mailctl", "--data-dir", store_dir, "--format", "json", "account", "show", USER)
    assert json.loads(r.stdout)["used"]["messages"] == 1


def test_imap_move_into_and_out_of_junk_trains(run, store_dir, corpus, stored, daemons, tmp_path):
    _, port = serve(daemons, store_dir, tmp_path, smtpds=0, imap=True)
    m = imaplib.IMAP4("127.0.0.1", port, timeout=20)
    m.login(USER, "pw")
    m.create("Junk")
    m.append("INBOX", None, None, corpus["test_spam"].replace("\n", "\r\n").encode())
    m.select("INBOX")
    typ, _ = m.uid("MOVE", "1:*", "Junk")
    assert typ == "OK"

    def stats():
        return json.loads(spamscore(run, store_dir, "stats", "-a", USER, "--format", "json").stdout)
    assert stats()["spam_messages"] == 1 and stats()["ham_messages"] == 0
    # Moved back out of Junk: relearnt as ham.
    m.select("Junk")
    typ, _ = m.uid("MOVE", "1:*", "INBOX")
    assert typ == "OK"
    assert stats()["spam_messages"] == 0 and stats()["ham_messages"] == 1
    m.logout()


def test_junk_filing_through_smtp_then_imap(run, store_dir, corpus, stored, daemons, tmp_path):
    """Spam at required_score goes to Junk with $Junk (smtplib in, imaplib out);
    X-Spam-* fields a sender forged are gone; with [spam] learn_from_imap off,
    moving it out of Junk trains nothing."""
    train_all(run, store_dir, corpus)
    config = mail_config(tmp_path, store_dir,
                         '[spam]\nrequired_score = "4.0"\nreject_score = "0"\nlearn_from_imap = false\n')
    (mx,), imap = serve(daemons, store_dir, tmp_path, config, imap=True)
    forged = "X-Spam-Status: No, score=-10.0 required=5.0 tests=none\r\nX-Spam-Flag: NO\r\nx-spam-score: -10\r\n"
    s = smtplib.SMTP("127.0.0.1", mx, timeout=20)
    s.ehlo("client.example")
    s.sendmail("promo@deals.example", [USER], forged + corpus["test_spam"])
    s.sendmail("alice@example.org", [USER], corpus["test_ham"])
    s.quit()

    m = imaplib.IMAP4("127.0.0.1", imap, timeout=20)
    m.login(USER, "pw")

    def fetch(mailbox):
        m.select(mailbox)
        typ, data = m.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER])")
        assert typ == "OK"
        return [(data[i][0], data[i][1]) for i in range(0, len(data), 2) if isinstance(data[i], tuple)]

    junk = fetch("Junk")
    assert len(junk) == 1, junk
    meta, head = junk[0]
    assert b"$Junk" in meta
    fields = [l for l in head.decode().split("\r\n") if l.lower().startswith("x-spam-")]
    assert [f.split(":")[0] for f in fields] == ["X-Spam-Status", "X-Spam-Score"], fields
    assert fields[0].startswith("X-Spam-Status: Yes, score=") and "required=4.0" in fields[0]
    inbox = fetch("INBOX")
    assert len(inbox) == 1 and b"X-Spam-Status: No" in inbox[0][1]

    def stats():
        return json.loads(spamscore(run, store_dir, "stats", "-a", USER, "--format", "json").stdout)
    before = stats()
    m.select("Junk")
    assert m.uid("MOVE", "1:*", "INBOX")[0] == "OK"
    assert stats() == before and before["ham_messages"] == 0  # learn_from_imap = false
    m.logout()


def test_bulk_digest_counts_local_users(run, store_dir, stored, daemons, tmp_path):
    """One body (personalized: the name differs) sent with smtplib to user after
    user: BULK_DIGEST fires from the third distinct local user on
    ([spam] bulk_min_users = 3); another body does not."""
    users = [f"u{i}@example.test" for i in range(1, 5)]
    add_users(run, store_dir, users)
    config = mail_config(tmp_path, store_dir, "[spam]\nbulk_min_users = 3\n")
    (mx,), imap = serve(daemons, store_dir, tmp_path, config, imap=True)
    s = smtplib.SMTP("127.0.0.1", mx, timeout=20)
    s.ehlo("client.example")
    for u in users[:3]:
        s.sendmail("track@parcels.example", [u], parcel_notice(u.split("@")[0]))
    s.sendmail("alice@example.org", [users[3]], "From: alice@example.org\r\nSubject: notes\r\n\r\n"
               "Meeting notes: we agreed to ship the release on Friday after the last review of the patches.\r\n")
    s.quit()
    statuses = [spam_status(imap, u) for u in users]
    assert [("BULK_DIGEST" in st) for st in statuses] == [False, False, True, False], statuses


def test_bulk_digest_counts_concurrent_deliveries_exactly(run, store_dir, stored, daemons, tmp_path):
    """One body delivered at once to 16 users through two mail-smtpd processes
    (8 smtplib clients each, started together): the store adds each user to
    the digest's sets in its writer transaction, so none is lost. With
    [spam] bulk_min_users = 17, BULK_DIGEST fires for a 17th user only if all
    16 were counted; and not for any of the 16."""
    users = [f"c{i}@example.test" for i in range(17)]
    add_users(run, store_dir, users)
    config = mail_config(tmp_path, store_dir, "[spam]\nbulk_min_users = 17\n")
    ports, imap = serve(daemons, store_dir, tmp_path, config, smtpds=2, imap=True)

    # Every client connects and says EHLO first, then all send at once.
    clients, errors = [], []
    for i, u in enumerate(users[:16]):
        s = smtplib.SMTP("127.0.0.1", ports[i % 2], timeout=30)
        s.ehlo("client.example")
        clients.append((s, u))
    start = threading.Barrier(len(clients))

    def send(s, u):
        try:
            start.wait()
            s.sendmail("track@parcels.example", [u], parcel_notice(u.split("@")[0]))
            s.quit()
        except Exception as e:  # reported below, with the user
            errors.append((u, repr(e)))
    threads = [threading.Thread(target=send, args=c) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    s = smtplib.SMTP("127.0.0.1", ports[0], timeout=30)
    s.sendmail("track@parcels.example", [users[16]], parcel_notice("c16"))
    s.quit()
    statuses = [spam_status(imap, u) for u in users]
    assert [("BULK_DIGEST" in st) for st in statuses] == [False] * 16 + [True], statuses


def test_dnsbl_and_uribl_through_smtp_cached(run, store_dir, stored, daemons, tmp_path):
    """[spam] dnsbl/uribl asked through the [auth] resolver (a dnslib server on
    127.0.0.1): the client IP and a link domain listed fire RCVD_IN_/URI_IN_;
    a second message within the cache time asks DNS nothing (the answers' TTL
    is 1 s, so libunbound's own cache has let go by then)."""
    pytest.importorskip("dnslib")
    from authdns import LocalDns

    class Counting(dict):
        asked = {}

        def get(self, key, default=None):
            Counting.asked[key] = Counting.asked.get(key, 0) + 1
            return super().get(key, default)
    dns = LocalDns(Counting({("1.0.0.127.bl.example", "A"): ["127.0.0.2"],
                             ("listed.example.uribl.example", "A"): ["127.0.0.2"]}))
    try:
        config = mail_config(tmp_path, store_dir, f'[auth]\nresolver = "{dns.address}"\nverify_inbound = false\n'
                             '[spam]\ndnsbl = "bl.example"\nuribl = "uribl.example"\n')
        (mx,), imap = serve(daemons, store_dir, tmp_path, config, imap=True)
        msg = ("From: a@b.example\r\nSubject: see\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
               "Message-ID: <x@b.example>\r\n\r\nLook at http://www.listed.example/offer and http://fine.example/\r\n")
        for i in range(2):
            if i:
                time.sleep(1.5)
            s = smtplib.SMTP("127.0.0.1", mx, timeout=20)
            s.ehlo("client.example")
            s.sendmail("a@b.example", [USER], msg)
            s.quit()
        for num in ("1", "2"):
            status = spam_status(imap, USER, num)
            assert "RCVD_IN_BL_EXAMPLE" in status and "URI_IN_URIBL_EXAMPLE" in status, (status, Counting.asked)
        assert Counting.asked[("1.0.0.127.bl.example", "A")] == 1, Counting.asked
        assert Counting.asked[("listed.example.uribl.example", "A")] == 1, Counting.asked
    finally:
        dns.stop()
