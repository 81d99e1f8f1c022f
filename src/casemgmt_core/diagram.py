"""Writes the lifecycle reference page: ``python -m casemgmt_core.diagram docs/``.

The page (``lifecycle.md``) holds the Mermaid diagram and a table of every transition with its
guards and labels; ``lifecycle.dot`` holds the Graphviz source. Both are generated from
:data:`casemgmt_core.lifecycle.DEFINITION`, and a test checks the committed copies are current.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .i18n import label
from .lifecycle import DEFINITION, DiagramUnavailable, to_dot, to_mermaid
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
    lines += ["", *_OVERRIDE_RULES]
    return "\n".join(lines) + "\n"


_OVERRIDE_RULES = """\
## The statutory override

Where the law obliges intervention (child abuse always; elder abuse and domestic violence where
the policy enables them), `invoke_override` lifts the consent rule. Nothing else about it is
the caller's to choose:

- **Legal basis and authority come from the policy** (`statutory.<ground>.legal_basis`,
  `.authority`). A command may leave them empty or repeat them exactly; a command naming another
  basis or authority is refused with `InvalidData` (`field` `legal_basis` or `authority`). The
  report deadline (`report_within_hours`) and the confirmation deadline are the policy's too.
- **A ground protects someone** (`statutory.<ground>.applies_to`): child abuse a member under the
  age of majority, elder abuse a member at or over `eligibility.elder_age`, domestic violence any
  member (configurable). The guard `statutory_subject` refuses the override for a household
  without such a member, or when the member named by `member_id` is not one.
- **Who may invoke it is policy** (`statutory.<ground>.invoked_by`, default intake officer,
  caseworker, supervisor): another role is refused (`TransitionRefused`, guard `statutory_actor`,
  reason `role_may_not_invoke`), even where the access table lets it issue `invoke_override`.
- **A second person may be required.** With `statutory.<ground>.confirmation_within_hours` set, a
  member of `confirmed_by` (default: supervisor) other than the invoker must `confirm_override`
  within that many hours. Until then the override lifts the consent rule; unconfirmed after it,
  the override lapses (consent is needed again, a later `invoke_override` replaces it), and
  `due()` lists the overdue confirmation (`override_confirmation`) for the supervising role.
- **The mandatory report counts as filed only when delivered and referenced.** Invoking the
  override puts one notification per authority into the outbox, at once. `file_report` is
  accepted only after every one of them was confirmed delivered (the `CaseManager` asks the store;
  guard `report_delivered`), and records the authority's reference. Until then the case cannot be
  closed, handed over, declined or redirected (guard `reports_filed`), and `due()` lists the
  report: once past its deadline it is overdue and escalates to the supervising role through the
  reminders, rather than waiting on retries.
- The override never silences the record: it, its basis and its actor are in the event, and every
  later step that consent would have blocked carries the legal basis.
""".splitlines()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0] if args else "docs")
    try:
        dot = to_dot()
    except DiagramUnavailable as exc:  # write neither file rather than one of them
        print(f"error: {exc}", file=sys.stderr)
        return 2
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lifecycle.md").write_text(lifecycle_page(), encoding="utf-8")
    (folder / "lifecycle.dot").write_text(dot, encoding="utf-8")
    print(f"wrote {folder / 'lifecycle.md'} and {folder / 'lifecycle.dot'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
