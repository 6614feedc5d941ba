"""The one redaction the core needs itself: a URL's password, in any of the forms a connection
string carries it (``user:pw@``, ``?password=``, ``password=`` in a key=value DSN). The full
redaction of logs, artifacts and alerts (tasks/notify/redact.py) builds on it."""
from __future__ import annotations

import re

REDACTED = "***"

# scheme://user:password@  (any scheme)
URL_USERINFO = re.compile(r"(?P<prefix>\b[a-zA-Z][a-zA-Z0-9+.\-]*://(?P<user>[^:/@\s]*):)(?P<pw>[^\s/]+)@")
# ?password=..., &sslpassword=..., key=value DSN "password=... " / "password='...'"
PASSWORD_PARAM = re.compile(
    r"(?i)(?P<key>\b(?:ssl)?pass(?:word|wd)?\s*=\s*)(?P<value>'(?:[^'\\]|\\.)*'|\"[^\"]*\"|[^\s&;,'\"]+)")


def mask_url_password(text: str) -> str:
    text = URL_USERINFO.sub(lambda m: f"{m['prefix']}{REDACTED}@", text)
    return PASSWORD_PARAM.sub(lambda m: f"{m['key']}{REDACTED}", text)
