"""Keep credentials out of anything printed or logged."""

from __future__ import annotations

import re

# Whatever comes before "://" (even a malformed scheme), then user[:password]@.
_USERINFO = re.compile(r"^(?P<scheme>[^/@]*?://)(?P<user>[^:@/]*)(?::[^@/]*)?@")


def redact_url(url: object) -> object:
    """Replace the password of a URL by ``***``; anything else passes through unchanged."""
    if not isinstance(url, str):
        return url
    match = _USERINFO.match(url)
    if not match or ":" not in url[len(match["scheme"]) : match.end()]:
        return url
    return f"{match['scheme']}{match['user']}:***@{url[match.end() :]}"


def redact_webhook(url: object) -> object:
    """Webhook URLs carry their secret in the path: keep only scheme and host."""
    if not isinstance(url, str) or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    return f"{scheme}://{host}/***"
