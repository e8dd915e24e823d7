#!/usr/bin/python3
"""Runs imaptest's scripted conformance tests (the data in
shared/testsuites/imaptest/tests, format in its README) against an IMAP server.

Our own implementation of the script semantics: per group it sets up the
mailbox state, sends each command group, matches untagged replies (any order,
variables, $!directives, relative sequence numbers) and the tagged reply.
Groups needing capabilities the server lacks are skipped with the reason.

    imaptest_runner.py --port 143 --user U --password P --tests DIR [GROUP...]

Exit status: 0 when no group failed, 1 otherwise."""
import argparse
import os
import re
import socket
import sys
import time

VAR_CHARS = re.compile(r"[A-Za-z0-9_]*")


# --- tokens: ('atom', s) ('str', s) ('nil',) ('list', [..]) ---------------

def tokenize(text):
    """Parses IMAP data (latin-1 text, literals inline as {n}CRLF<data>)."""
    pos = 0
    stack = [[]]
    n = len(text)
    while pos < n:
        c = text[pos]
        if c in " \r\n":
            pos += 1
        elif c == "(":
            stack.append([])
            pos += 1
        elif c == ")":
            if len(stack) > 1:
                inner = stack.pop()
                stack[-1].append(("list", inner))
            pos += 1
        elif c == '"':
            pos += 1
            out = []
            while pos < n and text[pos] != '"':
                if text[pos] == "\\" and pos + 1 < n:
                    pos += 1
                out.append(text[pos])
                pos += 1
            pos += 1
            stack[-1].append(("str", "".join(out)))
        else:
            m = re.match(r"~?\{(\d+)\+?\}\r\n", text[pos:pos + 32])
            if m:
                size = int(m.group(1))
                start = pos + m.end()
                stack[-1].append(("str", text[start:start + size]))
                pos = start + size
                continue
            end = pos
            while end < n and text[end] not in " ()\r\n":
                end += 1
            word = text[pos:end]
            pos = end
            stack[-1].append(("nil",) if word.upper() == "NIL" else ("atom", word))
    while len(stack) > 1:
        inner = stack.pop()
        stack[-1].append(("list", inner))
    return stack[0]


def show(tokens):
    parts = []
    for t in tokens:
        if t[0] == "list":
            parts.append("(" + show(t[1]) + ")")
        elif t[0] == "nil":
            parts.append("NIL")
        elif t[0] == "str":
            s = t[1]
            parts.append('"' + s + '"' if len(s) < 80 and "\n" not in s else "{%d}" % len(s))
        else:
            parts.append(t[1])
    return " ".join(parts)


def astring(t):
    return t[1] if t[0] in ("atom", "str") else None


# --- matching --------------------------------------------------------------

class Mismatch(Exception):
    pass


class Matcher:
    def __init__(self, variables):
        self.vars = variables
        self.seqmap = []  # relative sequence numbers ($1 ...) -> current

    def relative_seq(self, n):
        if n == 0 or n > len(self.seqmap):
            return "<out of range>"
        return str(self.seqmap[n - 1]) if self.seqmap[n - 1] else "<expunged>"

    def expand_input(self, pattern, value):
        """Matches pattern text (with $vars) against a value, binding unbound
        variables; returns the expanded pattern and whether case is ignored."""
        out = []
        icase = True
        i = 0
        vi = 0
        while i < len(pattern):
            c = pattern[i]
            if c != "$" or pattern[i + 1:i + 2] == "$":
                if c == "$":
                    i += 1
                    c = pattern[i]
                if vi >= len(value) or value[vi].upper() != c.upper():
                    raise Mismatch
                out.append(c)
                i += 1
                vi += 1
                continue
            i += 1
            if pattern[i:i + 1] == "{":
                end = pattern.find("}", i)
                name = pattern[i + 1:end]
                i = end + 1
            else:
                name = VAR_CHARS.match(pattern, i).group(0)
                i += len(name)
            if name.isdigit():
                val = self.relative_seq(int(name))
            elif name.startswith("case:"):
                icase = False
                val = name[5:]
            elif name and name in self.vars:
                val = self.vars[name]
            else:
                # Unbound: takes the value up to the pattern's next character.
                rest = pattern[i:]
                stop = rest[1] if rest.startswith("$$") else (rest[:1] if not rest.startswith("$") else "")
                end = vi
                while end < len(value) and (not stop or value[end].upper() != stop.upper()):
                    end += 1
                val = value[vi:end]
                if name:
                    self.vars[name] = val
            out.append(val)
            if value[vi:vi + len(val)] != val:
                raise Mismatch
            vi += len(val)
        return "".join(out), icase

    def match_args(self, match, args, prefix=False):
        ai = 0
        for mi, m in enumerate(match):
            last = mi == len(match) - 1
            if m[0] == "atom" and m[1] == "$]":
                while ai < len(args) and args[ai][0] == "atom" and "]" not in args[ai][1]:
                    ai += 1
                ai += 1
                continue
            if ai >= len(args):
                raise Mismatch
            a = args[ai]
            ai += 1
            if m[0] == "nil":
                if a[0] != "nil":
                    raise Mismatch
            elif m[0] == "list":
                if a[0] != "list":
                    raise Mismatch
                self.match_list(m[1], a[1])
            else:
                if m[1] == "$" and a[0] == "list":
                    continue
                s = astring(a)
                if s is None:
                    raise Mismatch
                # imaptest compares values as C strings (strcmp): nothing after
                # a NUL counts. append-binary's expected BINARY[1] literal is a
                # line short of its own BINARY.SIZE 7 and passes only that way.
                s = s.split("\0", 1)[0]
                expanded, icase = self.expand_input(m[1].split("\0", 1)[0], s)
                x, y = (expanded.upper(), s.upper()) if icase else (expanded, s)
                if prefix and last:
                    if not y.startswith(x):
                        raise Mismatch
                elif x != y:
                    raise Mismatch
        if not prefix and ai < len(args):
            raise Mismatch

    def match_list(self, match, args):
        unordered = False
        chain = 1
        noextra = None
        ignores, bans = [], []
        while match and match[0][0] == "atom" and match[0][1].startswith("$!"):
            d = match[0][1][2:]
            match = match[1:]
            if d.startswith("unordered"):
                unordered = True
                if noextra is None:
                    noextra = False
                if d.startswith("unordered="):
                    chain = int(d[10:])
            elif d == "ordered":
                unordered = False
            elif d == "extra":
                noextra = False
            elif d == "noextra":
                noextra = True
            elif d.startswith("ignore="):
                ignores.append(d[7:].upper())
            elif d.startswith("ban="):
                bans.append(d[4:].upper())
        if noextra is None:
            noextra = True
        if not unordered:
            self.match_args(match, args)
            return
        if len(args) % chain:
            raise Mismatch
        used = set()
        for mi in range(0, len(match), chain):
            for ai in range(0, len(args), chain):
                saved = dict(self.vars)
                try:
                    self.match_args(match[mi:mi + chain], args[ai:ai + chain])
                    used.add(ai)
                    break
                except Mismatch:
                    self.vars.clear()
                    self.vars.update(saved)
            else:
                raise Mismatch
        check = ignores if noextra else None
        for ai in range(0, len(args), chain):
            if ai in used:
                continue
            s = astring(args[ai])
            if s is None:
                continue
            if noextra and s.upper() not in ignores:
                raise Mismatch
            if not noextra and s.upper() in bans:
                raise Mismatch
        del check


def add_default_directives(tokens):
    """imaptest's defaults: LIST flags unordered; STATUS items and FETCH items
    unordered pairs; FETCH FLAGS unordered, nothing extra but \\Recent."""
    def has_directive(lst):
        return lst and lst[0][0] == "atom" and lst[0][1].startswith("$!")

    def directive(*names):
        return [("atom", n) for n in names]

    words = [t[1].lower() if t[0] == "atom" else "" for t in tokens]
    out = list(tokens)
    if words[:1] in (["list"], ["lsub"]) and len(out) > 1 and out[1][0] == "list" \
            and not has_directive(out[1][1]):
        out[1] = ("list", directive("$!unordered") + out[1][1])
    elif words[:1] == ["status"] and len(out) > 2 and out[2][0] == "list" \
            and not has_directive(out[2][1]):
        out[2] = ("list", directive("$!unordered=2") + out[2][1])
    elif len(words) > 2 and words[1] == "fetch" and out[2][0] == "list" \
            and not has_directive(out[2][1]):
        items = list(out[2][1])
        for i in range(1, len(items)):
            prev = items[i - 1]
            if items[i][0] == "list" and prev[0] == "atom" and prev[1].lower() == "flags" \
                    and not has_directive(items[i][1]):
                items[i] = ("list", directive("$!unordered", "$!noextra", "$!ignore=\\recent",
                                              "$!ignore=$HasAttachment",
                                              "$!ignore=$HasNoAttachment") + items[i][1])
        out[2] = ("list", directive("$!unordered=2") + items)
    return out


# --- the script ------------------------------------------------------------

class Command:
    def __init__(self, conn, text, reply, tag, line):
        self.conn, self.text, self.reply, self.tag, self.line = conn, text, reply, tag, line


class Group:
    def __init__(self, conn):
        self.conn = conn
        self.commands = []
        self.untagged = []  # (existence '*' '!' '?', tokens, text)
        self.pending = 0


def literal_blocks(lines):
    """Joins `{{{` ... `}}}` blocks into one logical line with inline literals."""
    out = []
    i = 0
    while i < len(lines):
        num, line = lines[i]
        line = line.rstrip("\r")
        i += 1
        while line.endswith("{{{"):
            binary = line.endswith("~{{{")
            line = line[:-4] if binary else line[:-3]
            body = []
            # Block lines keep a CR the script has (it is part of the data).
            while i < len(lines) and not lines[i][1].startswith("}}}"):
                body.append(lines[i][1])
                i += 1
            # A ~{{{ block is raw bytes (lines joined by LF); a {{{ block is
            # text whose lines end in CRLF unless the script has the CR itself.
            data = "\n".join(body) if binary else \
                re.sub(r"(?<!\r)\n", "\r\n", "\n".join(body))
            rest = lines[i][1][3:].rstrip("\r") if i < len(lines) else ""
            i += 1
            line += ("~" if binary else "") + "{%d}\r\n" % len(data) + data + rest
        out.append((num, line))
    return out


def reply_of(text):
    """Splits an optional `tagN` and ok/no/bad/"" from a line: (reply, tag, rest)."""
    tag = 0
    m = re.match(r"tag(\d+)( |$)", text, re.I)
    if m and int(m.group(1)) > 0:
        tag = int(m.group(1))
        text = text[m.end():]
    word = text.split(" ", 1)[0]
    if word.lower() in ("ok", "no", "bad", '""'):
        rest = text[len(word):]
        return word.lower(), tag, rest[1:] if rest.startswith(" ") else rest
    return None, tag, text


class Test:
    def __init__(self, path):
        self.name = os.path.basename(path)
        self.capabilities = []
        self.connections = 1
        self.messages = 0
        self.state = "selected"
        self.ignore_extra = True
        self.groups = []
        self.error = None
        with open(path, "rb") as f:
            text = f.read().decode("latin-1")
        head, _, body = text.partition("\n\n")
        for line in head.split("\n"):
            if not line.strip() or line.startswith("#") or ":" not in line:
                continue
            key, _, value = line.partition(":")
            key, value = key.strip().lower(), value.strip()
            if key == "capabilities":
                self.capabilities = value.split()
            elif key == "connections":
                self.connections = int(value)
            elif key == "messages":
                self.messages = -1 if value == "all" else int(value)
            elif key == "state":
                self.state = value.lower()
            elif key == "ignore_extra_untagged":
                self.ignore_extra = value.lower().startswith("y")
            elif key.startswith("user "):
                self.error = "needs a second user"
        offset = head.count("\n") + 2
        mbox = path + ".mbox"
        self.mbox = mbox if os.path.exists(mbox) else os.path.join(os.path.dirname(path),
                                                                   "default.mbox")
        raw = [(offset + i + 1, l) for i, l in enumerate(body.split("\n"))]
        self.parse(literal_blocks(self.conditionals(raw)))

    def conditionals(self, lines):
        out, skip = [], []
        for num, line in lines:
            cond = line.rstrip("\r")
            if cond.startswith("!ifenv ") or line.startswith("!ifnenv "):
                have = os.environ.get(cond.split(" ", 1)[1].strip()) is not None
                want = have if cond.startswith("!ifenv ") else not have
                skip.append([not want, False])
            elif cond == "!else" and skip:
                skip[-1][0] = not skip[-1][0]
            elif cond == "!endif" and skip:
                skip.pop()
            elif not any(s[0] for s in skip):
                out.append((num, line))
        return out

    def parse(self, lines):
        group = None
        for num, line in lines:
            if not line.strip() or line.startswith("#"):
                continue
            conn = 0
            body = line
            if line[:2] in ("* ", "! ", "? ") and group is not None:
                group.untagged.append((line[0], tokenize(line[2:]), line[2:]))
                continue
            if self.connections > 1:
                first, _, rest = line.partition(" ")
                if first.isdigit():
                    conn = int(first) - 1
                    body = rest
            if group is not None and group.pending:
                reply, tag, rest = reply_of(body)
                if reply:
                    for cmd in group.commands:
                        if cmd.reply is None and cmd.tag == tag:
                            cmd.reply = (reply, rest)
                            group.pending -= 1
                            break
                    continue
            reply, tag, rest = reply_of(body)
            if group is None or not (tag and group.commands and group.commands[-1].tag
                                     and group.pending):
                group = Group(conn)
                self.groups.append(group)
            group.commands.append(Command(conn, rest, (reply, "") if reply else None, tag, num))
            if reply is None:
                group.pending += 1


def read_mbox(path):
    """Messages of an mbox as (CRLF text, internal date) in file order."""
    with open(path, "rb") as f:
        lines = f.read().decode("latin-1").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    msgs = []
    cur = None
    for line in lines:
        m = re.match(r"From \S+ +\w{3} (\w{3}) +(\d+) (\d\d:\d\d:\d\d) (\d{4})(?: ([+-]\d{4}))?",
                     line)
        if m:
            if cur is not None and cur[0]:
                msgs.append(cur)
            elif cur is not None:
                m = None  # an empty body takes the next From line as content
            if m:
                date = "%02d-%s-%s %s %s" % (int(m.group(2)), m.group(1), m.group(4),
                                             m.group(3), m.group(5) or "+0000")
                cur = ([], date)
                continue
        cur[0].append(line)
    if cur is not None:
        msgs.append(cur)
    return [("".join(l + "\r\n" for l in body), date) for body, date in msgs]


# --- the connection --------------------------------------------------------

class Conn:
    def __init__(self, host, port, timeout):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.tagn = 0
        self.exists = 0
        self.closed = False
        self.greeting = self.response()

    def response(self):
        """One response with its literals inline, as latin-1 text."""
        parts = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    self.closed = True
                    raise EOFError("connection closed")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            parts.append(line + b"\r\n")
            m = re.search(rb"~?\{(\d+)\}$", line)
            if not m:
                break
            size = int(m.group(1))
            while len(self.buf) < size:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise EOFError("connection closed in a literal")
                self.buf += chunk
            parts.append(self.buf[:size])
            self.buf = self.buf[size:]
        return b"".join(parts).decode("latin-1")[:-2]

    def next_tag(self):
        self.tagn += 1
        return "t%d" % self.tagn

    def send(self, text):
        self.sock.sendall(text.encode("latin-1"))

    def track(self, tokens):
        if len(tokens) >= 2 and tokens[0][0] == "atom" and tokens[0][1].isdigit() \
                and tokens[1][0] == "atom":
            what = tokens[1][1].upper()
            if what == "EXISTS":
                self.exists = int(tokens[0][1])
            elif what == "EXPUNGE":
                self.exists -= 1

    def simple(self, text):
        """Sends a setup command; returns (status, untagged responses)."""
        tag = self.next_tag()
        self.send("%s %s\r\n" % (tag, text))
        return self.wait(tag)

    def wait(self, tag):
        untagged = []
        while True:
            r = self.response()
            if r.startswith(tag + " "):
                return r[len(tag) + 1:], untagged
            if r.startswith("* "):
                self.track(tokenize(r[2:]))
                untagged.append(r[2:])

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Runner:
    def __init__(self, args):
        self.args = args

    def run_test(self, test):
        """Returns (status, failed, total, messages): status pass|fail|skip."""
        if test.error:
            return "skip", 0, 0, [test.error]
        a = self.args
        conns = []
        try:
            for _ in range(test.connections):
                conns.append(Conn(a.host, a.port, a.timeout))
            if test.state != "nonauth":
                for c in conns:
                    st, _ = c.simple("LOGIN %s %s" % (quote(a.user), quote(a.password)))
                    if not st.upper().startswith("OK"):
                        return "fail", 1, 1, ["login failed: " + st]
            caps = self.capabilities(conns[0])
            missing = [x for x in test.capabilities if x.upper() not in caps]
            if missing:
                return "skip", 0, 0, ["server lacks " + " ".join(missing)]
            if test.state != "nonauth":
                self.setup(test, conns)
            return self.execute(test, conns)
        except (OSError, EOFError) as e:
            return "fail", 1, 1, ["setup: %s" % e]
        finally:
            for c in conns:
                c.close()

    def capabilities(self, conn):
        st, untagged = conn.simple("CAPABILITY")
        caps = set()
        for u in untagged:
            words = u.split()
            if words and words[0].upper() == "CAPABILITY":
                caps.update(w.upper() for w in words[1:])
        return caps

    def setup(self, test, conns):
        c = conns[0]
        box = self.args.mailbox
        deletes, unsubs = [], []
        for cmd, out in (("LIST", deletes), ("LSUB", unsubs)):
            _, untagged = c.simple('%s "" %s' % (cmd, quote(box + "*")))
            for u in untagged:
                t = tokenize(u)
                if len(t) >= 4 and astring(t[3]) is not None:
                    out.append(astring(t[3]))
        for name in sorted(deletes, key=str.lower, reverse=True):
            c.simple("DELETE " + quote(name))
        for name in sorted(unsubs, key=str.lower, reverse=True):
            c.simple("UNSUBSCRIBE " + quote(name))
        if test.state == "auth":
            return
        st, _ = c.simple("CREATE " + quote(box))
        if not st.upper().startswith("OK"):
            raise EOFError("CREATE failed: " + st)
        if test.state == "created":
            return
        msgs = read_mbox(test.mbox)
        count = len(msgs) if test.messages < 0 else test.messages
        for i in range(count):
            st = self.append(c, quote(box), msgs[i % len(msgs)], True)
            if not st.upper().startswith("OK"):
                raise EOFError("APPEND failed: " + st)
        if test.state == "selected":
            for conn in conns:
                st, _ = conn.simple("SELECT " + quote(box))
                if not st.upper().startswith("OK"):
                    raise EOFError("SELECT failed: " + st)

    def append(self, conn, args, msg, with_date, tag=None):
        own = tag is None
        tag = tag or conn.next_tag()
        text, date = msg
        date_arg = ' "%s"' % date if with_date else ""
        conn.send("%s APPEND %s%s {%d+}\r\n%s\r\n" % (tag, args, date_arg, len(text), text))
        if own:
            return conn.wait(tag)[0]
        return None

    def execute(self, test, conns):
        variables = {"user": self.args.user, "username": self.args.user.split("@")[0],
                     "domain": self.args.user.partition("@")[2], "password": self.args.password,
                     "mailbox": self.args.mailbox,
                     "mailbox_url": self.args.mailbox}
        matcher = Matcher(variables)
        msgs = read_mbox(test.mbox)
        appended = 0
        if test.state in ("appended", "selected"):
            appended = len(msgs) if test.messages < 0 else test.messages
        next_msg = [appended]
        failed = 0
        notes = []
        for group in test.groups:
            try:
                problem = self.run_group(test, group, conns[group.conn], matcher, msgs, next_msg)
            except (OSError, EOFError) as e:
                problem = "connection: %s" % e
            if problem:
                failed += 1
                notes.append("line %d: %s" % (group.commands[0].line, problem))
                if conns[group.conn].closed:
                    break
        return ("fail" if failed else "pass"), failed, len(test.groups), notes

    def expand_command(self, text, matcher):
        out = []
        i = 0
        while i < len(text):
            c = text[i]
            if c != "$" or i + 1 >= len(text):
                out.append(c)
                i += 1
                continue
            i += 1
            if text[i] == "$":
                out.append("$")
                i += 1
                continue
            if text[i] == "{":
                end = text.index("}", i)
                name = text[i + 1:end]
                i = end + 1
            else:
                name = VAR_CHARS.match(text, i).group(0)
                i += len(name)
            if name.isdigit():
                out.append(matcher.relative_seq(int(name)))
            elif name in matcher.vars:
                out.append(matcher.vars[name])
            else:
                raise KeyError("uninitialized variable $" + name)
        return "".join(out)

    def run_group(self, test, group, conn, matcher, msgs, next_msg):
        matcher.seqmap = list(range(1, conn.exists + 1))
        tags = {}
        for cmd in group.commands:
            try:
                text = self.expand_command(cmd.text, matcher)
            except KeyError as e:
                return str(e)
            tag = conn.next_tag()
            tags[tag] = cmd
            if text.lower() == "append" or (text.lower().startswith("append ")
                                            and "{" not in text):
                args = text[7:] if text.lower() != "append" else quote(self.args.mailbox)
                msg = msgs[next_msg[0] % len(msgs)]
                next_msg[0] += 1
                self.append(conn, args, msg, text.lower() == "append", tag)
                continue
            # Literals: non-synchronizing (LITERAL+).
            text = re.sub(r"(~?)\{(\d+)\}\r\n", r"\1{\2+}\r\n", text)
            conn.send("%s %s\r\n" % (tag, text))
        # $tag: the (first) command's tag, as imaptest binds it.
        matcher.vars["tag"] = next(iter(tags))
        expected = [(e, add_default_directives(t), raw) for e, t, raw in group.untagged]
        found = [False] * len(expected)
        problems = []
        extra = []
        waiting = set(tags)
        while waiting:
            r = conn.response()
            tag, _, rest = r.partition(" ")
            if tag in waiting:
                waiting.discard(tag)
                cmd = tags[tag]
                want, prefix = cmd.reply or ("ok", "")
                status = rest.split(" ", 1)[0].lower()
                if want != '""' and status != want:
                    problems.append("expected %s, got: %s" % (want, rest[:200]))
                elif prefix:
                    try:
                        matcher.match_args(tokenize(prefix), tokenize(rest)[1:], prefix=True)
                    except Mismatch:
                        problems.append("expected %s %s, got: %s" % (want, prefix, rest[:200]))
                continue
            if tag == "+":
                continue
            if tag != "*":
                problems.append("unexpected: " + r[:200])
                continue
            tokens = tokenize(rest)
            prefix = bool(tokens) and tokens[0][0] == "atom" and \
                tokens[0][1].lower() in ("ok", "no", "bad", "bye")
            matched = False
            for i, (existence, exp, raw) in enumerate(expected):
                if found[i]:
                    continue
                saved = dict(matcher.vars)
                try:
                    matcher.match_args(exp, tokens, prefix)
                except (Mismatch, IndexError):
                    matcher.vars.clear()
                    matcher.vars.update(saved)
                    continue
                if existence == "!":
                    problems.append("banned reply: " + rest[:200])
                found[i] = True
                matched = True
            if not matched:
                extra.append(rest)
            conn.track(tokens)
            if len(tokens) >= 2 and tokens[1] == ("atom", tokens[1][1]) and \
                    tokens[1][1].upper() == "EXPUNGE" and tokens[0][1].isdigit():
                seq = int(tokens[0][1])
                matcher.seqmap = [0 if s == seq else (s - 1 if s > seq else s)
                                  for s in matcher.seqmap]
            if tokens and tokens[0][0] == "atom" and tokens[0][1].upper() == "BYE" and \
                    all(c.text.lower().startswith("logout") for c in group.commands):
                pass
        for i, (existence, exp, raw) in enumerate(expected):
            if existence == "*" and not found[i]:
                problems.append("missing: * %s; got: %s" % (raw, " | ".join(x[:160] for x in extra)
                                                            or "nothing unmatched"))
                break
        if extra and not test.ignore_extra:
            problems.append("unexpected untagged: " + extra[0][:200])
        return "; ".join(problems)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--mailbox", default="imaptest")
    ap.add_argument("--tests", required=True, help="folder of imaptest scripts")
    ap.add_argument("--timeout", type=float, default=10)
    ap.add_argument("--verbose", "-v", action="store_true")
    ap.add_argument("--known-failures", default="",
                    help="comma-separated groups expected to fail (reported, not counted); "
                         "one of them passing is a failure, so the list stays current")
    ap.add_argument("groups", nargs="*")
    a = ap.parse_args()
    names = a.groups or sorted(n for n in os.listdir(a.tests)
                               if not n.endswith(".mbox") and
                               os.path.isfile(os.path.join(a.tests, n)))
    runner = Runner(a)
    known = set(filter(None, a.known_failures.split(",")))
    counts = {"pass": 0, "fail": 0, "skip": 0, "known-fail": 0}
    failed_cmds = total_cmds = 0
    for name in names:
        test = Test(os.path.join(a.tests, name))
        status, failed, total, notes = runner.run_test(test)
        if name in known:
            if status == "fail":
                status = "known-fail"
            elif status == "pass":
                status, notes = "fail", ["passes now: take it off the known failures"]
        counts[status] += 1
        failed_cmds += failed
        total_cmds += total
        detail = ""
        if status in ("fail", "known-fail"):
            detail = " (%d/%d commands failed)" % (failed, total)
        elif status == "skip":
            detail = " (%s)" % "; ".join(notes)
        print("%-32s %s%s" % (name, status, detail))
        if status == "fail":
            for n in notes[:None if a.verbose else 3]:
                print("    " + n)
    print("%d groups: %d passed, %d failed, %d known failures, %d skipped; %d/%d commands failed"
          % (len(names), counts["pass"], counts["fail"], counts["known-fail"], counts["skip"],
             failed_cmds, total_cmds))
    return 1 if counts["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
