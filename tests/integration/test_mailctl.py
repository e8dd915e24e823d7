"""mailctl as an admin uses it: every command, both output formats, IDN domains,
every error path with its exit code (and that nothing changed), the store lock,
and `config check|show`. Each store case runs offline (the store opened
directly) and online (through a running mail-stored)."""
import json
import os
import subprocess
import tomllib

import pytest

from conftest import binary

EX_USAGE, EX_DATAERR, EX_NOUSER, EX_UNAVAILABLE, EX_TEMPFAIL, EX_CONFIG = 64, 65, 67, 69, 75, 78

IDN = "bücher.example"
IDN_ACE = "xn--bcher-kva.example"


class Ctl:
    """Runs mailctl against one data directory in one mode (offline|online)."""

    def __init__(self, run, config, mode, tmp_path):
        self.run = run
        self.config = config
        self.mode = mode
        self.tmp_path = tmp_path
        self.n = 0

    def __call__(self, *args, input=None, mode=True):
        flags = ["--config", self.config]
        if mode:
            flags.append("--offline" if self.mode == "offline" else "--online")
        return self.run("mailctl", *flags, *args, input=input)

    def ok(self, *args, input=None):
        r = self(*args, input=input)
        assert r.returncode == 0, (args, r.returncode, r.stderr.decode())
        return r.stdout.decode()

    def json(self, *args, input=None):
        return json.loads(self.ok("--format", "json", *args, input=input))

    def fails(self, code, *args, input=None, match=None):
        """Runs a command that must fail with `code`, one line on stderr, and no change."""
        before = self.snapshot()
        r = self(*args, input=input)
        err = r.stderr.decode()
        assert r.returncode == code, (args, r.returncode, err)
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("mailctl: "), err
        if match:
            assert match in lines[0], (match, lines[0])
        assert r.stdout == b"", r.stdout
        assert self.snapshot() == before, f"{args} changed the store"
        return lines[0]

    def snapshot(self):
        state = {
            "domains": self.json("domain", "list"),
            "accounts": self.json("account", "list"),
            "aliases": self.json("alias", "list"),
        }
        for d in state["domains"]:
            d.pop("created", None)
        return state

    def password_file(self, text):
        self.n += 1
        path = self.tmp_path / f"pw{self.n}"
        path.write_text(text + "\n")
        os.chmod(path, 0o600)
        return str(path)


@pytest.fixture(params=["offline", "online"])
def ctl(request, run, datadir, tmp_path):
    binary("mailctl")
    if request.param == "online":
        request.getfixturevalue("stored")
    config = tmp_path / "mail.toml"
    config.write_text(f'[general]\ndata_dir = "{datadir}"\n')
    return Ctl(run, str(config), request.param, tmp_path)


def table(text):
    """Rows of a table output as lists of cells (split on runs of 2+ spaces)."""
    import re
    lines = text.rstrip("\n").split("\n")
    return [re.split(r"\s{2,}", line.strip()) for line in lines]


# ---- domains --------------------------------------------------------------------------

def test_domains(ctl):
    out = ctl.ok("domain", "add", "Example.TEST")
    rows = table(out)
    assert rows[0] == ["DOMAIN", "UNICODE", "ACCOUNTS", "ALIASES"]
    assert rows[1][0] == "example.test"

    added = ctl.json("domain", "add", IDN)
    assert isinstance(added, dict) and added["domain"] == IDN_ACE and added["unicode"] == IDN

    listing = ctl.json("domain", "list")
    assert isinstance(listing, list)
    assert [d["domain"] for d in listing] == ["example.test", IDN_ACE]
    rows = table(ctl.ok("domain", "list"))
    assert [r[0] for r in rows[1:]] == ["example.test", IDN_ACE]
    assert rows[2][1] == IDN

    ctl.fails(EX_DATAERR, "domain", "add", "example.test", match="already exists")
    ctl.fails(EX_DATAERR, "domain", "add", "xn--bcher-kva.EXAMPLE.", match="already exists")
    ctl.fails(EX_DATAERR, "domain", "add", "bad..example", match="invalid domain")
    ctl.fails(EX_DATAERR, "domain", "add", "bad-.example", match="invalid domain")
    ctl.fails(EX_DATAERR, "domain", "add", "--", "-bad.example", match="invalid domain")
    ctl.fails(EX_NOUSER, "domain", "remove", "nope.example", match="no such domain")

    pw = ctl.password_file("s3cret-pass")
    ctl.ok("account", "add", "joe@" + IDN, "--password-file", pw)
    ctl.fails(EX_DATAERR, "domain", "remove", IDN, match="still has 1 account")

    assert ctl.ok("domain", "remove", "example.test") == ""
    ctl.ok("account", "remove", "joe@" + IDN_ACE)
    removed = ctl.json("domain", "remove", IDN)
    assert removed == {"domain": IDN_ACE, "removed": True}
    assert ctl.json("domain", "list") == []
    assert table(ctl.ok("domain", "list")) == [["DOMAIN", "UNICODE", "ACCOUNTS", "ALIASES"]]


# ---- accounts -------------------------------------------------------------------------

def test_accounts(ctl):
    ctl.ok("domain", "add", "example.test")
    ctl.ok("domain", "add", IDN)
    pw = ctl.password_file("correct horse")

    acc = ctl.json("account", "add", "Joe@Example.Test", "--name", "Joe Bloggs", "--quota", "1G",
                   "--password-file", pw)
    assert acc["address"] == "joe@example.test"
    assert acc["name"] == "Joe Bloggs"
    assert acc["quota"]["bytes"] == 1 << 30
    out = ctl.ok("account", "add", "ann@" + IDN, "--password-stdin", input="another pass\n")
    assert table(out)[1][0] == "ann@" + IDN_ACE

    listing = ctl.json("account", "list")
    assert [a["address"] for a in listing] == ["ann@" + IDN_ACE, "joe@example.test"]
    assert [a["address"] for a in ctl.json("account", "list", IDN)] == ["ann@" + IDN_ACE]
    rows = table(ctl.ok("account", "list", "example.test"))
    assert rows[0] == ["ADDRESS", "NAME", "QUOTA", "USED", "MESSAGES"]
    assert rows[1][:3] == ["joe@example.test", "Joe Bloggs", "1G"]

    shown = ctl.json("account", "show", "JOE@example.test")
    assert isinstance(shown, dict) and shown["address"] == "joe@example.test"
    assert table(ctl.ok("account", "show", "ann@" + IDN))[1][0] == "ann@" + IDN_ACE

    # errors, each leaving the store as it was
    ctl.fails(EX_DATAERR, "account", "add", "joe@example.test", "--password-file", pw, match="already exists")
    ctl.fails(EX_NOUSER, "account", "add", "joe@nowhere.example", "--password-file", pw,
              match="no such domain")
    ctl.fails(EX_DATAERR, "account", "add", "not-an-address", "--password-file", pw, match="invalid address")
    ctl.fails(EX_DATAERR, "account", "add", "a b@example.test", "--password-file", pw)
    ctl.fails(EX_DATAERR, "account", "add", "new@example.test", "--quota", "12X", "--password-file", pw,
              match="invalid size")
    ctl.fails(EX_USAGE, "account", "add", "new@example.test", input="", match="not a terminal")
    ctl.fails(EX_DATAERR, "account", "add", "new@example.test", "--password-stdin", input="\n",
              match="empty")
    ctl.fails(EX_USAGE, "account", "add", "new@example.test", "--password", "secret")  # never on argv
    ctl.fails(EX_USAGE, "account", "add", "new@example.test", "--password-file", pw, "--password-stdin")
    ctl.fails(EX_NOUSER, "account", "show", "nobody@example.test", match="no such account")
    ctl.fails(EX_NOUSER, "account", "remove", "nobody@example.test", match="no such account")
    ctl.fails(EX_NOUSER, "account", "passwd", "nobody@example.test", "--password-file", pw,
              match="no such account")
    ctl.fails(EX_NOUSER, "account", "list", "nowhere.example", match="no such domain")
    ctl.fails(EX_USAGE, "account", "show")

    assert ctl.ok("account", "passwd", "joe@example.test", "--password-stdin", input="new password\n") == ""
    assert ctl.json("account", "passwd", "joe@example.test", "--password-file", pw)["password_changed"] is True
    ctl.fails(EX_USAGE, "account", "passwd", "joe@example.test", input="")  # no terminal to prompt on

    assert ctl.ok("account", "remove", "ann@" + IDN) == ""
    assert ctl.json("account", "remove", "joe@example.test") == {"address": "joe@example.test", "removed": True}
    assert ctl.json("account", "list") == []


# ---- quotas ---------------------------------------------------------------------------

def test_quota(ctl):
    ctl.ok("domain", "add", IDN)
    ctl.ok("account", "add", "joe@" + IDN, "--password-stdin", input="pw-joe\n")

    q = ctl.json("quota", "show", "joe@" + IDN)
    assert q == {"address": "joe@" + IDN_ACE, "bytes": {"used": 0, "limit": 0},
                 "messages": {"used": 0, "limit": 0}}
    rows = table(ctl.ok("quota", "set", "joe@" + IDN, "500M", "--messages", "1000"))
    assert rows[0] == ["ADDRESS", "BYTES_USED", "BYTES_LIMIT", "MESSAGES_USED", "MESSAGES_LIMIT"]
    assert rows[1] == ["joe@" + IDN_ACE, "0", "500M", "0", "1000"]
    assert ctl.json("quota", "show", "joe@" + IDN_ACE)["bytes"]["limit"] == 500 << 20

    for text, value in [("2G", 2 << 30), ("10k", 10 << 10), ("1536", 1536), ("3MiB", 3 << 20),
                        ("unlimited", 0), ("0", 0)]:
        q = ctl.json("quota", "set", "joe@" + IDN, text)
        assert q["bytes"]["limit"] == value, text
        assert q["messages"]["limit"] == 1000  # kept when --messages is not given
    assert ctl.json("quota", "set", "joe@" + IDN, "1G", "--messages", "unlimited")["messages"]["limit"] == 0
    assert table(ctl.ok("quota", "show", "joe@" + IDN))[1] == ["joe@" + IDN_ACE, "0", "1G", "0", "unlimited"]

    ctl.fails(EX_DATAERR, "quota", "set", "joe@" + IDN, "lots", match="invalid size")
    ctl.fails(EX_DATAERR, "quota", "set", "joe@" + IDN, "5Q", match="invalid size")
    ctl.fails(EX_DATAERR, "quota", "set", "joe@" + IDN, "1G", "--messages", "-1", match="invalid count")
    ctl.fails(EX_NOUSER, "quota", "set", "nobody@" + IDN, "1G", match="no such account")
    ctl.fails(EX_NOUSER, "quota", "show", "nobody@" + IDN, match="no such account")
    ctl.fails(EX_DATAERR, "quota", "show", "@" + IDN, match="invalid address")
    ctl.fails(EX_USAGE, "quota", "set", "joe@" + IDN)


# ---- aliases --------------------------------------------------------------------------

def test_aliases(ctl):
    ctl.ok("domain", "add", "example.test")
    ctl.ok("domain", "add", IDN)
    ctl.ok("account", "add", "joe@example.test", "--password-stdin", input="pw-joe\n")

    a = ctl.json("alias", "add", "Team@Example.test", "joe@example.test", "Ann@Elsewhere.Example")
    assert a == {"source": "team@example.test", "targets": ["joe@example.test", "ann@elsewhere.example"]}
    rows = table(ctl.ok("alias", "add", "@" + IDN, "joe@example.test"))
    assert rows == [["SOURCE", "TARGETS"], ["@" + IDN_ACE, "joe@example.test"]]
    ctl.ok("alias", "add", "info@" + IDN, "joe@example.test")
    more = ctl.json("alias", "add", "team@example.test", "bob@" + IDN)
    assert more["targets"] == ["joe@example.test", "ann@elsewhere.example", "bob@" + IDN_ACE]

    listing = ctl.json("alias", "list")
    assert [x["source"] for x in listing] == ["@" + IDN_ACE, "info@" + IDN_ACE, "team@example.test"]
    assert [x["source"] for x in ctl.json("alias", "list", IDN)] == ["@" + IDN_ACE, "info@" + IDN_ACE]
    rows = table(ctl.ok("alias", "list", "example.test"))
    assert rows[1] == ["team@example.test", "joe@example.test, ann@elsewhere.example, bob@" + IDN_ACE]

    ctl.fails(EX_DATAERR, "alias", "add", "team@example.test", "joe@example.test", match="already has")
    ctl.fails(EX_DATAERR, "alias", "add", "@" + IDN, "joe@example.test", match="already has")
    ctl.fails(EX_NOUSER, "alias", "add", "x@nowhere.example", "joe@example.test", match="no such domain")
    ctl.fails(EX_NOUSER, "alias", "add", "@nowhere.example", "joe@example.test", match="no such domain")
    ctl.fails(EX_DATAERR, "alias", "add", "x@example.test", "not an address", match="invalid address")
    ctl.fails(EX_DATAERR, "alias", "add", "bad@@example.test", "joe@example.test", match="invalid address")
    ctl.fails(EX_DATAERR, "alias", "add", "@bad..example", "joe@example.test", match="invalid domain")
    ctl.fails(EX_DATAERR, "alias", "add", "joe@example.test", "ann@elsewhere.example", match="account")
    ctl.fails(EX_DATAERR, "alias", "add", "loop@example.test", "loop@example.test", match="itself")
    ctl.fails(EX_USAGE, "alias", "add", "x@example.test")
    ctl.fails(EX_NOUSER, "alias", "remove", "nobody@example.test", match="no such alias")
    ctl.fails(EX_NOUSER, "alias", "remove", "team@example.test", "zed@example.test", match="no target")
    ctl.fails(EX_NOUSER, "alias", "list", "nowhere.example", match="no such domain")

    left = ctl.json("alias", "remove", "team@example.test", "ann@elsewhere.example")
    assert left == {"source": "team@example.test", "targets": ["joe@example.test", "bob@" + IDN_ACE]}
    assert ctl.ok("alias", "remove", "team@example.test") == ""
    assert ctl.json("alias", "remove", "@" + IDN) == {"source": "@" + IDN_ACE, "removed": True}
    ctl.ok("alias", "remove", "info@" + IDN_ACE, "joe@example.test")  # its last target: the alias goes
    assert ctl.json("alias", "list") == []


# ---- the command line -----------------------------------------------------------------

def test_usage_errors(ctl):
    for args in [(), ("domain",), ("frobnicate",), ("domain", "frobnicate"), ("domain", "add"),
                 ("--format", "xml", "domain", "list"), ("domain", "list", "extra")]:
        r = ctl(*args)
        assert r.returncode == EX_USAGE, (args, r.stderr)
        assert r.stderr.decode().startswith("mailctl: "), r.stderr
    r = ctl("--offline", "--online", "domain", "list", mode=False)
    assert r.returncode == EX_USAGE
    # the global options also come after the command
    ctl.ok("domain", "add", "example.test")
    r = ctl.run("mailctl", "domain", "list", "--format", "json", "--config", ctl.config,
                "--offline" if ctl.mode == "offline" else "--online")
    assert r.returncode == 0 and json.loads(r.stdout)[0]["domain"] == "example.test"


def test_help_and_version(run):
    r = run("mailctl", "--version")
    assert r.returncode == 0 and r.stdout.decode().startswith("mailctl ")
    r = run("mailctl", "--help")
    assert r.returncode == 0
    for word in ["domain", "account", "quota", "alias", "config", "--format", "--offline", "--online"]:
        assert word in r.stdout.decode()
    r = run("mailctl", "account", "add", "--help")
    assert r.returncode == 0 and "--password-file" in r.stdout.decode()
    for shell in ["bash", "zsh"]:
        r = run("mailctl", "--generate-completion", shell)
        assert r.returncode == 0 and "mailctl" in r.stdout.decode()
    assert run("mailctl", "--generate-completion", "fish").returncode == EX_USAGE


def test_data_dir_option_overrides_config(run, datadir, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    config = tmp_path / "mail.toml"
    config.write_text(f'[general]\ndata_dir = "{datadir}"\n')
    assert run("mailctl", "--config", config, "--offline", "--data-dir", other,
               "domain", "add", "other.example").returncode == 0
    r = run("mailctl", "--config", config, "--offline", "--format", "json", "domain", "list")
    assert r.returncode == 0 and json.loads(r.stdout) == []
    r = run("mailctl", "--config", config, "--offline", "--data-dir", other, "--format", "json",
            "domain", "list")
    assert [d["domain"] for d in json.loads(r.stdout)] == ["other.example"]


# ---- the store lock -------------------------------------------------------------------

def test_second_direct_opener_is_refused(run, datadir, tmp_path, stored):
    config = tmp_path / "mail.toml"
    config.write_text(f'[general]\ndata_dir = "{datadir}"\n')
    r = run("mailctl", "--config", config, "--offline", "domain", "list")
    err = r.stderr.decode()
    assert r.returncode in (EX_TEMPFAIL, EX_UNAVAILABLE), (r.returncode, err)
    assert len(err.splitlines()) == 1 and err.startswith("mailctl: ")
    assert "in use" in err or "locked" in err or "busy" in err, err
    # through the daemon it works, and the default mode finds the daemon
    assert run("mailctl", "--config", config, "--online", "domain", "add", "a.example").returncode == 0
    r = run("mailctl", "--config", config, "--format", "json", "domain", "list")
    assert r.returncode == 0 and json.loads(r.stdout)[0]["domain"] == "a.example"


def test_online_without_daemon(run, datadir, tmp_path):
    config = tmp_path / "mail.toml"
    config.write_text(f'[general]\ndata_dir = "{datadir}"\n')
    r = run("mailctl", "--config", config, "--online", "domain", "list")
    assert r.returncode == EX_UNAVAILABLE, r.stderr
    assert r.stderr.decode().startswith("mailctl: ")


def test_offline_store_survives_reopen(run, datadir, tmp_path):
    config = tmp_path / "mail.toml"
    config.write_text(f'[general]\ndata_dir = "{datadir}"\n')
    for i in range(3):
        assert run("mailctl", "--config", config, "--offline", "domain", "add",
                   f"d{i}.example").returncode == 0
    r = run("mailctl", "--config", config, "--offline", "--format", "json", "domain", "list")
    assert [d["domain"] for d in json.loads(r.stdout)] == ["d0.example", "d1.example", "d2.example"]


# ---- configuration --------------------------------------------------------------------

def test_config_check_and_show(run, tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('[general]\nhostname = "mail.example.test"\n\n[smtp]\nmax_recipients = 50\n')
    r = run("mailctl", "config", "check", good)
    assert r.returncode == 0, r.stderr
    assert "ok" in r.stdout.decode()

    broken = tmp_path / "broken.toml"
    broken.write_text('[general]\nhostname = "mail.example.test"\n\n[smtp]\nmax_recipients = "many"\n')
    r = run("mailctl", "config", "check", broken)
    err = r.stderr.decode()
    assert r.returncode == EX_CONFIG, err
    assert len(err.splitlines()) == 1 and err.startswith("mailctl: ")
    assert "broken.toml:5" in err and "max_recipients" in err, err

    syntax = tmp_path / "syntax.toml"
    syntax.write_text('[general]\nhostname = "unterminated\n')
    r = run("mailctl", "config", "check", syntax)
    assert r.returncode == EX_CONFIG and "syntax.toml:2" in r.stderr.decode(), r.stderr

    r = run("mailctl", "--config", good, "config", "check")
    assert r.returncode == 0
    r = run("mailctl", "config", "check", tmp_path / "missing.toml")
    assert r.returncode == EX_CONFIG and r.stderr.decode().startswith("mailctl: ")

    # a broken configuration stops every other command too, before the store is touched
    r = run("mailctl", "--config", broken, "--offline", "--data-dir", tmp_path / "d", "domain", "list")
    assert r.returncode == EX_CONFIG and "broken.toml:5" in r.stderr.decode()
    assert not (tmp_path / "d").exists()

    r = run("mailctl", "--config", good, "config", "show")
    assert r.returncode == 0, r.stderr
    shown = tomllib.loads(r.stdout.decode())
    assert shown["general"]["hostname"] == "mail.example.test"
    assert shown["smtp"]["max_recipients"] == 50

    r = run("mailctl", "--config", good, "config", "show", "--defaults")
    assert r.returncode == 0
    defaults = tomllib.loads(r.stdout.decode())
    assert defaults["smtp"]["max_recipients"] != 50
    assert defaults["general"]["data_dir"] == "./data"

    # what `config show` prints loads back to the same values
    again = tmp_path / "again.toml"
    again.write_bytes(subprocess.run([binary("mailctl"), "--config", str(good), "config", "show"],
                                     stdout=subprocess.PIPE, check=True).stdout)
    assert run("mailctl", "config", "check", again).returncode == 0
    r = run("mailctl", "--config", again, "config", "show")
    assert tomllib.loads(r.stdout.decode()) == shown


# ---- the terminal prompt --------------------------------------------------------------

def _on_terminal(argv, answers, timeout=30):
    """Runs argv with a pseudo-terminal as stdin/stdout/stderr, answering each prompt
    (text ending in ": ") with the next answer. Returns (exit code, terminal output)."""
    import pty
    import select
    import time
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(argv[0], argv)
    out = b""
    deadline = time.monotonic() + timeout
    pending = list(answers)

    def read_some():
        nonlocal out
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise TimeoutError(out)
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            return False
        out += chunk
        return bool(chunk)

    while pending:
        while not out.rstrip().endswith(b":"):
            if not read_some():
                break
        os.write(fd, pending.pop(0) + b"\n")
        out += b"\x00"  # mark the answer so the next prompt is awaited afresh
    while read_some():
        pass
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.replace(b"\x00", b"").decode("utf-8", "replace")


def test_password_prompt_on_terminal(run, datadir, tmp_path):
    config = tmp_path / "mail.toml"
    config.write_text(f'[general]\ndata_dir = "{datadir}"\n')
    base = [binary("mailctl"), "--config", str(config), "--offline"]
    assert run("mailctl", *base[1:], "domain", "add", "example.test").returncode == 0

    code, out = _on_terminal(base + ["account", "add", "joe@example.test"], [b"first-Secret", b"other-Secret"])
    assert code == EX_DATAERR and "do not match" in out, out
    assert "first-Secret" not in out and "other-Secret" not in out  # no echo
    r = run("mailctl", *base[1:], "--format", "json", "account", "list")
    assert json.loads(r.stdout) == []

    code, out = _on_terminal(base + ["account", "add", "joe@example.test"], [b"tty-Secret", b"tty-Secret"])
    assert code == 0, out
    assert out.count("assword") == 2 and "tty-Secret" not in out, out
    r = run("mailctl", *base[1:], "--format", "json", "account", "list")
    assert [a["address"] for a in json.loads(r.stdout)] == ["joe@example.test"]

    code, out = _on_terminal(base + ["account", "passwd", "joe@example.test"], [b"next-Secret", b"next-Secret"])
    assert code == 0 and "next-Secret" not in out, out
