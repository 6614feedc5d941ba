"""Catalog and ledger SQL, kept as .sql files in sql/ beside the migration runner.

`text(name)` is the file as written (psycopg %(param)s placeholders); `compose(name, **params)`
binds the parameters client-side as literals, for callers that need one SQL object.
"""
from __future__ import annotations

from functools import cache
from importlib import resources

from psycopg import sql


@cache
def text(name: str) -> str:
    return resources.files(__package__).joinpath("sql", f"{name}.sql").read_text(encoding="utf-8")


def compose(name: str, **params: object) -> sql.Composed:
    template = text(name).replace("{", "{{").replace("}", "}}")
    template = template.replace("%%", "%")
    for key in params:
        template = template.replace(f"%({key})s", "{" + key + "}")
    return sql.SQL(template).format(**{k: sql.Literal(v) for k, v in params.items()})
