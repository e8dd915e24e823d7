"""imaptest's scripted conformance groups (shared/testsuites/imaptest) run by our
own runner (tests/imaptest/imaptest_runner.py) against a fresh mail-imapd and
mail-stored. Groups needing a capability we do not advertise are skipped; any
failure in another group fails the test."""
import os
import subprocess

import pytest

from conftest import SOURCE_DIR, TESTSUITES
from test_imap import USER, PASSWORD, datadir_for_daemons, start_stack  # noqa: F401 (fixture)

SUITE = os.environ.get("MAIL_IMAPTEST_DIR", os.path.join(TESTSUITES, "imaptest", "tests"))
RUNNER = os.path.join(SOURCE_DIR, "tests", "imaptest", "imaptest_runner.py")

# Server gaps still open (the runner fails the test when one of these passes,
# so the list only shrinks). None today; the 11 groups skipped need
# capabilities we do not advertise: CATENATE (catenate, catenate-multiappend),
# NOTIFY (notify), CONTEXT=SEARCH (search-context-update{,2,3}, search-partial),
# CONTEXT=SORT (sort-partial), URLAUTH (urlauth, urlauth2, urlauth-binary).
KNOWN_FAILURES = []


def test_imaptest_groups(datadir_for_daemons, tmp_path, daemons, run):
    if not os.path.isdir(SUITE):
        pytest.skip(f"imaptest scripts not found in {SUITE}")
    stack = start_stack(datadir_for_daemons, tmp_path, daemons, run)
    r = subprocess.run(["/usr/bin/python3", RUNNER, "--port", str(stack.port), "--user", USER,
                        "--password", PASSWORD, "--tests", SUITE,
                        "--known-failures", ",".join(KNOWN_FAILURES)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    out = r.stdout.decode("utf-8", "replace")
    print(out)
    assert stack.imapd.alive(), "mail-imapd died:\n" + stack.imapd.log_text()
    assert r.returncode == 0, out
    log = stack.imapd.log_text()
    assert "Sanitizer" not in log and "runtime error" not in log, log
