#!/usr/bin/env bash
# Refresh the lock files from pyproject.toml: exact versions with hashes, for every
# platform, on Python 3.11 and newer. requirements/test.lock (the product and its test
# tools) is resolved first; requirements/runtime.lock (the product alone, for the image
# and `make demo`) is constrained by it, so the two never disagree on a version.
#   scripts/lock.sh              keep the locked versions where pyproject allows them
#   scripts/lock.sh --upgrade    move every package to its newest allowed version
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/venv.sh test
UV_VERSION=0.13.9
if ! .venv/bin/uv --version 2>/dev/null | grep -q "^uv $UV_VERSION"; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi
compile=(.venv/bin/uv pip compile pyproject.toml --universal --python-version 3.11
         --generate-hashes --quiet "$@")
"${compile[@]}" --extra test -o requirements/test.lock
"${compile[@]}" -c requirements/test.lock -o requirements/runtime.lock
echo "wrote requirements/test.lock and requirements/runtime.lock; run make test, then commit them"
