"""The one rule for names and ids, shared by ingestion, serving, the settings and the CLI.

A value that one of them accepts, the others accept too, so a decision served for an id
can always join the rewards ingested for it.

- A *name* (namespace, surface, experiment, key prefix, policy id) is 1-64 letters,
  digits, ``_``, ``.`` or ``-``, matched in full (a trailing newline is not a name).
- An *id* (user, request, item, event) is 1-256 characters, not blank, and printable:
  no control characters (NUL, CR, LF, ...), no format characters (bidirectional
  overrides, zero-width joiners) and no lone surrogates.
"""

from __future__ import annotations

import re

NAME_RULE = "1-64 letters, digits, '_', '.' or '-'"
NAME_REGEX = r"[A-Za-z0-9_.\-]{1,64}"
MAX_ID_LENGTH = 256
_NAME = re.compile(NAME_REGEX)


def is_name(value: object) -> bool:
    return type(value) is str and _NAME.fullmatch(value) is not None


def is_id(value: object) -> bool:
    return type(value) is str and id_problem(value) is None


def id_problem(text: str) -> str | None:
    """Why ``text`` is not an id, or None when it is one."""
    if not text.strip():
        return "blank"
    if len(text) > MAX_ID_LENGTH:
        return f"longer than {MAX_ID_LENGTH} characters"
    if not text.isprintable():
        return "contains control or format characters"
    return None


def storable_text(text: str) -> str:
    """``text`` as every warehouse stores it: NUL bytes and lone surrogates, which
    PostgreSQL refuses, written as backslash escapes (``\\x00``, ``\\ud800``)."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text
