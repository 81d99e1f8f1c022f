"""The documentation's Python blocks run, in order, page by page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted(
    p
    for p in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    if "```python" in p.read_text(encoding="utf-8")
)
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def test_there_are_pages_with_code() -> None:
    assert ROOT / "docs" / "getting-started.md" in PAGES
    assert ROOT / "README.md" in PAGES


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_page_code_runs(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # blocks that write files write them here
    namespace: dict[str, object] = {"__name__": f"docs.{page.stem}"}
    blocks = BLOCK.findall(page.read_text(encoding="utf-8"))
    assert blocks
    for number, block in enumerate(blocks, 1):
        code = compile(block, f"{page.name} (block {number})", "exec")
        exec(code, namespace)
