"""Run a command and write its peak resident set size (KiB) to a file.

    python scripts/peak_rss.py REPORT_FILE COMMAND [ARG ...]

Why a launcher of its own: the peak Linux reports for a child (``ru_maxrss`` of
``wait4``) includes the memory of the process it was forked from, recorded when the child
executes its program. Forked from a test runner or a benchmark holding hundreds of
megabytes, the figure is theirs, not the command's. Forked from this small process, the
figure is the command's own. The command's output passes through; the exit status is the
command's (or 128 + the signal that ended it). Standard library only, so that its own
footprint stays a few megabytes.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: peak_rss.py REPORT_FILE COMMAND [ARG ...]", file=sys.stderr)
        return 2
    report, command = argv[0], argv[1:]
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(command[0], command)
        except OSError as exc:
            print(f"peak_rss.py: cannot run {command[0]}: {exc}", file=sys.stderr)
        os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    with open(report, "w", encoding="ascii") as handle:
        handle.write(f"{usage.ru_maxrss}\n")  # KiB on Linux
    code = os.waitstatus_to_exitcode(status)  # -N when signal N ended it
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
