"""Hiding passwords in URIs and DSNs: the one function every log, report and output uses."""

from __future__ import annotations

import re

_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<userinfo>[^@/]*)@", re.IGNORECASE)
_PASSWORD_PARAM = re.compile(r"(?P<key>password=)[^&\s]*", re.IGNORECASE)


def redact_uri(uri: str) -> str:
    """Hide the password in a URI or DSN, keep the user, host and database readable."""

    def _hide(match: re.Match[str]) -> str:
        user = match["userinfo"].split(":", 1)[0]
        return f"{match['scheme']}{user}:***@" if ":" in match["userinfo"] else match[0]

    return _PASSWORD_PARAM.sub(r"\g<key>***", _CREDENTIALS.sub(_hide, uri))
