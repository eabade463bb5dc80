#!/usr/bin/env python3
"""The rooms' dependencies, as README's Layout draws them: every #include of
one room in another must be an allowed edge, and no room may reach itself
through others. Fails with the offending file and include."""
import os
import re
import sys

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")

# room -> rooms it may include. Top-level files are rooms of their own name.
ALLOWED = {
    "util": set(),
    "net": {"util"},
    "jail_abi": set(),
    "seccomp": {"util", "jail_abi"},
    "profile": {"util", "net", "seccomp"},
    "plan": {"util", "net", "profile", "seccomp"},
    "jail_interface": {"util", "plan", "jail_abi"},
    "jail": {"util", "plan", "profile", "seccomp", "jail_interface", "jail_abi"},
    "supervise": {"util", "net", "plan", "profile", "seccomp", "jail", "jail_interface", "jail_abi"},
    "report": {"util", "plan", "profile", "seccomp", "supervise", "jail_abi", "subcommand"},
    "serve": {"util", "plan", "profile", "report", "supervise", "jail_abi", "subcommand"},
    "mcp": {"util", "report", "serve", "supervise", "subcommand"},
    "doctor": {"util", "plan", "profile", "supervise", "subcommand"},
    "subcommand": {"util", "profile"},
    "completions": {"profile", "subcommand"},
    "run_command": {"util", "plan", "profile", "report", "supervise", "subcommand"},
    "main": None,  # the wiring: anything
}


def room_of(path):
    parts = path.split("/")
    if len(parts) == 1:
        return parts[0].split(".")[0]
    return parts[0]


def main():
    bad = []
    edges = {}
    for root, _, files in os.walk(SRC):
        for f in files:
            full = os.path.join(root, f)
            rel = os.path.relpath(full, SRC)
            me = room_of(rel)
            if me not in ALLOWED:
                bad.append(f"{rel}: room '{me}' is not in tests/layout.py (and README's Layout)")
                continue
            with open(full, encoding="utf-8") as fh:
                for inc in re.findall(r'#include "([^"]+)"', fh.read()):
                    other = room_of(inc)
                    if other == me or other not in ALLOWED:
                        continue
                    edges.setdefault(me, set()).add(other)
                    if ALLOWED[me] is not None and other not in ALLOWED[me]:
                        bad.append(f"src/{rel}: includes {inc}: {me} may not depend on {other}")
    # No room reaches itself.
    def reach(start, node, seen):
        for nxt in edges.get(node, ()):
            if nxt == start:
                return True
            if nxt not in seen:
                seen.add(nxt)
                if reach(start, nxt, seen):
                    return True
        return False

    for r in edges:
        if reach(r, r, set()):
            bad.append(f"room {r} depends on itself through others")
    for b in bad:
        print(b)
    print(f"layout: {sum(len(v) for v in edges.values())} room edges checked, {len(bad)} wrong")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
