"""MkDocs hook (``hooks:`` in mkdocs.yml): links from the docs to files outside ``docs/``
(``../examples/policy.toml``) point at the repository on GitHub in the built site, as they do on
GitHub itself; links within the docs are left to MkDocs, which checks them."""

from __future__ import annotations

import re
from typing import Any

REPOSITORY = "https://github.com/casemgmt-core/casemgmt-core/blob/main/"
_OUTSIDE = re.compile(r"\]\(\.\./((?:examples|benchmarks|src|tests)/[^)\s]*)\)")


def on_page_markdown(markdown: str, **_: Any) -> str:
    return _OUTSIDE.sub(lambda m: f"]({REPOSITORY}{m.group(1)})", markdown)
