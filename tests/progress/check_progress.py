#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""End-to-end tests of progress reporting (ctest "progress_*"; cli/progress.hpp).

    check_progress.py MAILDSAR SAMPLES_DIR CASE

CASE: json (every long command's --progress=json lines parse, carry the schema, and per phase
begin, grow monotonically and end at the total), pipe (stderr not a terminal: no progress),
tty (stderr a pty: the updating line), quiet (stderr a pty and -q: nothing), usage (a bad
--progress value is exit 64).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

MAILDSAR = SAMPLES = None


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def estate(tmp):
    """The sample estate, copied, with a retention rule so that `retention --apply` has work."""
    dst = Path(tmp) / "estate"
    shutil.copytree(SAMPLES, dst, symlinks=True)
    cfg = dst / "maildsar.json"
    text = cfg.read_text(encoding="utf-8")
    cfg.write_text(text.replace('"identity":', '"retention": {"postfix": "1d"},\n  "identity":', 1),
                   encoding="utf-8")
    return dst


def run(dst, *args, stderr_tty=False, expect=(0,), prefix=()):
    argv = [*prefix, MAILDSAR, "-c", str(dst / "maildsar.json"), *args]
    if not stderr_tty:
        p = subprocess.run(argv, capture_output=True, text=True, check=False)
        if p.returncode not in expect:
            fail(f"{' '.join(args)}: exit {p.returncode}\n{p.stderr}")
        return p.stderr
    master, slave = os.openpty()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    err = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the pty
            break
        if not chunk:
            break
        err += chunk
    p.stdout.read()
    rc = p.wait()
    os.close(master)
    if rc not in expect:
        fail(f"{' '.join(args)} (stderr a terminal): exit {rc}\n{err.decode(errors='replace')}")
    return err.decode(errors="replace")


def events(stderr, command):
    """The progress events in stderr, checked: schema, command, per phase begin..end, monotonic."""
    out = []
    for line in stderr.splitlines():
        if not line.startswith("{"):
            continue
        try:
            ev = json.loads(line)
        except json.JSONDecodeError as e:
            fail(f"{command}: a progress line is no JSON ({e}): {line}")
        if ev.get("schema") != "maildsar.progress" or ev.get("version") != 1:
            fail(f"{command}: not a maildsar.progress v1 event: {line}")
        for key in ("command", "event", "phase", "unit", "done", "total", "elapsed_seconds",
                    "rate_per_second", "eta_seconds"):
            if key not in ev:
                fail(f"{command}: event without '{key}': {line}")
        if ev["command"] != command:
            fail(f"{command}: event of command {ev['command']}: {line}")
        out.append(ev)
    if not out:
        fail(f"{command} --progress=json wrote no progress event; stderr:\n{stderr}")
    phase, done, ended = None, 0, []
    for ev in out:
        if ev["event"] == "begin":
            if phase is not None:
                fail(f"{command}: phase {ev['phase']} begins before {phase} ended")
            phase, done = ev["phase"], ev["done"]
            continue
        if phase is None or ev["phase"] != phase:
            fail(f"{command}: {ev['event']} of phase {ev['phase']} outside it: {ev}")
        if ev["done"] < done:
            fail(f"{command}: done went down from {done} to {ev['done']} in phase {phase}")
        if ev["total"] is not None and ev["done"] > ev["total"]:
            fail(f"{command}: done {ev['done']} beyond total {ev['total']}")
        done = ev["done"]
        if ev["event"] == "end":
            if ev["total"] is not None and ev["done"] != ev["total"]:
                fail(f"{command}: phase {phase} ended at {ev['done']} of {ev['total']}")
            ended.append(phase)
            phase = None
    if phase is not None:
        fail(f"{command}: phase {phase} never ended")
    return ended


def case_json(tmp):
    dst = estate(tmp)
    subject = str(dst / "subject.json")
    ended = events(run(dst, "index", "--progress=json"), "index")
    if sorted(ended) != ["amavis", "archive", "mailboxes", "postfix"]:
        fail(f"index: phases {ended}, not one per source")
    # -q silences diagnostics, not the JSON a wrapper asked for
    events(run(dst, "index", "--full", "-q", "--progress=json"), "index")
    events(run(dst, "export", "--subject", subject, "--out", str(Path(tmp) / "package"),
               "--progress=json"), "export")
    events(run(dst, "plan", "--subject", subject, "--out", str(Path(tmp) / "m.json"),
               "--operator", "anna", "--progress=json"), "plan")
    # approve needs another OS login than the planner's (four-eyes): as root, the harness's way
    # (tests/e2e/e2e_support.hpp): real uid 4242, effective root
    setpriv = shutil.which("setpriv")
    if os.geteuid() == 0 and setpriv:
        run(dst, "approve", str(Path(tmp) / "m.json"), "--operator", "ben",
            prefix=(setpriv, "--ruid", "4242", "--"))
        ended = events(run(dst, "erase", str(Path(tmp) / "m.json"), "--operator", "cleo",
                           "--progress=json", expect=(0, 1)), "erase")
        if not ended or ended[0] != "files":
            fail(f"erase: phases {ended}, not 'files' first")
    else:
        print("json: erase not run (approving needs root and setpriv)")
    events(run(dst, "verify", "--subject", subject, "--operator", "cleo", "--progress=json",
               expect=(0, 1, 69)), "verify")
    ended = events(run(dst, "retention", "--progress=json", expect=(0, 1)), "retention")
    if ended != ["scan postfix"]:
        fail(f"retention (dry run): phases {ended}, not ['scan postfix']")
    ended = events(run(dst, "retention", "--apply", "--operator", "cleo", "--progress=json", expect=(0, 1)),
                   "retention")
    if ended[:2] != ["scan postfix", "files"]:
        fail(f"retention --apply: phases {ended}, not 'scan postfix', 'files', ...")
    print("json: index, export, plan, erase, verify and retention wrote parseable, monotonic events")


def case_pipe(tmp):
    dst = estate(tmp)
    err = run(dst, "index")
    if "\r" in err or "index mailboxes" in err or "{" in err:
        fail(f"progress on a stderr that is no terminal: {err!r}")
    print("pipe: no progress when stderr is not a terminal")


def case_tty(tmp):
    dst = estate(tmp)
    err = run(dst, "index", stderr_tty=True)
    if "\r\x1b[K" not in err or "index mailboxes: " not in err or " files" not in err:
        fail(f"no progress line on a terminal: {err!r}")
    print("tty: the updating progress line on a terminal")


def case_quiet(tmp):
    dst = estate(tmp)
    err = run(dst, "index", "-q", stderr_tty=True)
    if "\r" in err or "index mailboxes" in err:
        fail(f"progress despite -q: {err!r}")
    print("quiet: -q silences the progress line")


def case_usage(tmp):
    dst = estate(tmp)
    p = subprocess.run([MAILDSAR, "-c", str(dst / "maildsar.json"), "index", "--progress=loud"],
                       capture_output=True, text=True, check=False)
    if p.returncode != 64 or "--progress" not in p.stderr:
        fail(f"--progress=loud: exit {p.returncode}, {p.stderr!r}")
    print("usage: a bad --progress value is exit 64")


def main(argv):
    global MAILDSAR, SAMPLES
    cases = {"json": case_json, "pipe": case_pipe, "tty": case_tty, "quiet": case_quiet,
             "usage": case_usage}
    if len(argv) != 4 or argv[3] not in cases:
        print(__doc__, file=sys.stderr)
        return 64
    MAILDSAR, SAMPLES = argv[1], argv[2]
    with tempfile.TemporaryDirectory(prefix="maildsar-progress.") as tmp:
        cases[argv[3]](tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
