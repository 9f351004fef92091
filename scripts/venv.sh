#!/usr/bin/env bash
# Create .venv (Python 3.11+) and install the project into it, editable, with exactly the
# versions of the lock file: requirements/test.lock with the argument `test` (the product
# and its test tools), else requirements/runtime.lock. Reinstalls only when the lock file
# or pyproject.toml changed since the last install. scripts/lock.sh refreshes the locks.
set -euo pipefail
cd "$(dirname "$0")/.."

extras="${1:-}"
lock="requirements/${extras:-runtime}.lock"
stamp=".venv/.installed-${extras:-runtime}"

pick_python() {
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "error: Python 3.11 or newer is required (none found on PATH)" >&2
  return 1
}

if [ ! -x .venv/bin/python ]; then
  python="$(pick_python)"
  echo "creating .venv with $("$python" --version)"
  if ! "$python" -m venv .venv 2>/dev/null; then
    # Debian ships venv support separately from the interpreter.
    rm -rf .venv
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
      version="$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
      echo "installing python${version}-venv from Debian packages (needed by 'python -m venv')"
      apt-get update -qq && apt-get install -y -qq "python${version}-venv" >/dev/null
      "$python" -m venv .venv
    else
      echo "error: '$python -m venv' failed; install your distribution's python3-venv package" >&2
      exit 1
    fi
  fi
fi

if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ "$lock" -nt "$stamp" ]; then
  echo "installing the project into .venv from $lock"
  pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
  "${pip[@]}" --upgrade pip
  # The lock is complete (every dependency, pinned and hashed): install it as it is.
  "${pip[@]}" --no-deps --require-hashes -r "$lock"
  "${pip[@]}" --no-deps -e .
  .venv/bin/python -m pip check --disable-pip-version-check >/dev/null ||
    { .venv/bin/python -m pip check; echo "error: $lock does not satisfy pyproject.toml; run scripts/lock.sh" >&2; exit 1; }
  touch "$stamp"
fi
