"""Writes the lifecycle reference page: ``python -m casemgmt_core.diagram docs/``.

The page (``lifecycle.md``) holds the Mermaid diagram and a table of every transition with its
guards and labels; ``lifecycle.dot`` holds the Graphviz source. Both are generated from
:data:`casemgmt_core.lifecycle.DEFINITION`, and a test checks the committed copies are current.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .i18n import label
from .lifecycle import DEFINITION, to_dot, to_mermaid
from .model import CaseState

__all__ = ["lifecycle_page", "main"]


def lifecycle_page() -> str:
    lines = [
        "# The case lifecycle",
        "",
        "Generated from `casemgmt_core.lifecycle.DEFINITION` by `python -m casemgmt_core.diagram docs/`;",
        "do not edit by hand. Events that record data without changing the stage are listed in the",
        "second table and drawn only by `to_mermaid(include_records=True)`.",
        "",
        "```mermaid",
        to_mermaid().strip(),
        "```",
        "",
        "## States",
        "",
        "| state | 한국어 | English |",
        "|---|---|---|",
    ]
    lines += [f"| `{s.value}` | {label('state', s)} | {label('state', s, 'en')} |" for s in CaseState]
    moves = [t for t in DEFINITION if t.dest is not None]
    records = [t for t in DEFINITION if t.dest is None]
    lines += ["", "## Transitions", "", "| event | 한국어 | from | to | guards |", "|---|---|---|---|---|"]
    for t in moves:
        guards = ", ".join(f"`{g}`" for g in ((t.branch,) if t.branch else ()) + t.guards) or "-"
        sources = ", ".join(s.value for s in t.sources)
        lines.append(f"| `{t.event}` | {label('event', t.event)} | {sources} | {t.dest} | {guards} |")
    lines += [
        "",
        "## Records (the stage does not change)",
        "",
        "| event | 한국어 | in | guards |",
        "|---|---|---|---|",
    ]
    for t in records:
        guards = ", ".join(f"`{g}`" for g in t.guards) or "-"
        sources = ", ".join(s.value for s in t.sources)
        lines.append(f"| `{t.event}` | {label('event', t.event)} | {sources} | {guards} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0] if args else "docs")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lifecycle.md").write_text(lifecycle_page(), encoding="utf-8")
    (folder / "lifecycle.dot").write_text(to_dot(), encoding="utf-8")
    print(f"wrote {folder / 'lifecycle.md'} and {folder / 'lifecycle.dot'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
