#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Checks of the generated man pages (ctest; docs/config.md, docs/cli.md are their source).

    check_man.py lint PAGE                  groff -ww: no warning on the utf8 and ascii devices
    check_man.py options MAILDSAR PAGE      every command and long option --help lists is in PAGE
    check_man.py config-keys CONFIG_CPP PAGE   every key the config parser accepts is in PAGE
    check_man.py environment SOURCE_DIR PAGE   every MAILDSAR_* variable the program reads is in PAGE
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    return 1


def plain(roff):
    """Roff source to searchable text: fonts dropped, escaped hyphens and backslashes literal."""
    text = re.sub(r"\\f[BIRP]", "", roff)
    return text.replace(r"\-", "-").replace(r"\e", "\\").replace(r"\&", "")


def lint(page):
    groff = shutil.which("groff")
    if groff is None:
        return fail("groff is not installed (scripts/install-deps.sh installs groff-base)")
    status = 0
    for device in ("utf8", "ascii"):
        run = subprocess.run([groff, "-ww", "-z", "-man", f"-T{device}", page],
                             capture_output=True, text=True, check=False)
        if run.returncode != 0 or run.stderr:
            status = fail(f"groff -ww -z -man -T{device} {page}: exit {run.returncode}\n{run.stderr}")
    if status == 0:
        print(f"{page}: groff -ww clean on utf8 and ascii")
    return status


def sections(roff):
    """Text of each .SS section (name -> text) and of each .SH section."""
    result, name = {}, None
    for line in roff.splitlines():
        if line.startswith((".SS ", ".SH ")):
            name = plain(line[4:]).strip().strip('"')
            result.setdefault(name, "")
        elif name is not None:
            result[name] += line + "\n"
    return {k: plain(v) for k, v in result.items()}


def help_text(maildsar, *args):
    run = subprocess.run([maildsar, *args, "--help"], capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise RuntimeError(f"{maildsar} {' '.join(args)} --help: exit {run.returncode}: {run.stderr}")
    return run.stdout


def long_options(text):
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", text))


def options(maildsar, page):
    roff = Path(page).read_text(encoding="utf-8")
    secs = sections(roff)
    main = help_text(maildsar)
    block = main.split("Commands:\n", 1)[1].split("\n\n", 1)[0]
    commands = [line.split()[0] for line in block.splitlines() if line.strip()]
    if len(commands) < 10:
        return fail(f"found only {commands} in 'maildsar --help'")
    global_opts = long_options(main.split("Global options", 1)[1])
    completion = subprocess.run([maildsar, "completion", "bash"], capture_output=True, text=True, check=True).stdout
    offered = {m.group(1): set(m.group(2).split())
               for m in re.finditer(r'^\s*([a-z-]+)\) opts="([^"]*)"', completion, flags=re.M)}
    if len(offered) < len(commands) // 2:
        return fail("cannot read the options of 'maildsar completion bash'")
    description = secs.get("DESCRIPTION", "")
    missing = [f"global option {o}" for o in sorted(global_opts) if o not in description]
    checked = len(global_opts)
    for cmd in commands:
        if cmd not in secs:
            missing.append(f"command '{cmd}' (no section '.SS {cmd}')")
            continue
        own = help_text(maildsar, cmd).split(f"Options of {cmd}", 1)
        if len(own) != 2:
            missing.append(f"'maildsar {cmd} --help' has no 'Options of {cmd}' block")
            continue
        # The positional slots (approve's --manifest, config's --config-words) are options to
        # Boost but not to a user: the completion script, written from the same command table,
        # leaves them out, and so does this check.
        opts = (long_options(own[1].split("Global options", 1)[0]) - {"--help"}) & offered.get(cmd, set())
        checked += len(opts)
        for opt in sorted(opts):
            if not re.search(re.escape(opt) + r"(?![a-z0-9-])", secs[cmd]):
                missing.append(f"{cmd} {opt}")
    if missing:
        return fail(f"{page} (docs/cli.md) does not document what --help lists:\n  " + "\n  ".join(missing))
    print(f"{len(commands)} commands and {checked} options of --help are in {page}")
    return 0


def config_keys(config_cpp, page):
    source = Path(config_cpp).read_text(encoding="utf-8")
    keys = set()
    for lst in re.findall(r"check_keys\([^{]*\{([^}]*)\}", source, flags=re.S):
        keys.update(re.findall(r'"([a-z_]+)"', lst))
    if len(keys) < 40:
        return fail(f"found only {len(keys)} keys in {config_cpp}: has check_keys changed?")
    roff = Path(page).read_text(encoding="utf-8")
    tags = set()
    lines = roff.splitlines()
    for k, line in enumerate(lines):
        if line == ".TP" and k + 1 < len(lines):
            tags.add(plain(lines[k + 1]).strip())
    missing = sorted(keys - tags)
    if missing:
        return fail(f"{page} (docs/config.md) has no table row for the config keys: {', '.join(missing)}")
    print(f"all {len(keys)} config keys of {config_cpp} are in {page}")
    return 0


def environment(source_dir, page):
    names = set()
    for sub in ("core", "connectors", "indexer", "query", "access", "erasure", "casework", "remote",
                "redaction", "extract", "cli"):
        for f in (Path(source_dir) / sub).rglob("*.[ch]pp"):
            names.update(re.findall(r'getenv\("(MAILDSAR_[A-Z_]+)"\)', f.read_text(encoding="utf-8")))
    env = sections(Path(page).read_text(encoding="utf-8")).get("ENVIRONMENT", "")
    # test hooks are documented together as MAILDSAR_TEST_*
    missing = sorted(n for n in names if n not in env and not (n.startswith("MAILDSAR_TEST_") and "MAILDSAR_TEST_*" in env))
    if missing:
        return fail(f"ENVIRONMENT of {page} (docs/cli.md '## Environment') lacks {', '.join(missing)}")
    print(f"the {len(names)} MAILDSAR_* variables the program reads are in ENVIRONMENT")
    return 0


def main(argv):
    checks = {"lint": (lint, 1), "options": (options, 2), "config-keys": (config_keys, 2),
              "environment": (environment, 2)}
    if len(argv) < 2 or argv[1] not in checks or len(argv) != 2 + checks[argv[1]][1]:
        print(__doc__, file=sys.stderr)
        return 64
    return checks[argv[1]][0](*argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
