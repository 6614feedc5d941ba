"""Flow runs read from the Prefect API, page by page."""
from __future__ import annotations

PAGE = 200



def read_all(read, **kw) -> list:
    out, offset = [], 0
    while True:
        page = read(limit=PAGE, offset=offset, **kw)
        out += page
        if len(page) < PAGE:
            return out
        offset += PAGE
