"""The documents in ``docs/``: every pointer to them names a page and a section that exist, and the options the
paper-vs-reference page names are the code's.

Source comments cite the docs as ``docs/PAGE.md, 'Section'`` (several sections joined by ``,``, ``and`` or
``to``) or ``docs/design.md, principle N``. A renamed heading or a removed principle fails here, naming the file
that still points at it, instead of leaving a comment that leads nowhere.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
_TITLE = r"""(?:'[^'\n]+'|"[^"\n]+")"""
# A page, then optionally its sections: "docs/x.md, 'A'", "docs/x.md ('A' to 'B')", "docs/x.md, 'A' and 'B'".
_POINTER = re.compile(rf"docs/([\w-]+\.md)[),]*\s*\(?(?:from\s+)?({_TITLE}(?:(?:,|\s+and|\s+to)\s+{_TITLE})*)?")
_PRINCIPLE = re.compile(r"docs/design\.md,\s+principle\s+(\d+)")


def _sources() -> list[Path]:
    """Every file that may point at the docs: the package, the tests, the benchmarks, the README, the docs."""
    files = [*(ROOT / "src" / "internalize").rglob("*.py"), *(ROOT / "tests").glob("*.py"),
             *(ROOT / "benchmarks").glob("*.py"), *(ROOT / "benchmarks").glob("*.md"), ROOT / "README.md",
             *DOCS.glob("*.md")]
    return sorted(f for f in files if f.name != Path(__file__).name)


def _joined(text: str) -> str:
    """The text with line breaks (and a comment's leading ``#``) folded into spaces, so a pointer that wraps onto
    the next line reads as one."""
    return re.sub(r"\n[ \t]*(?:#+:?[ \t]*)?", " ", text)


def _headings(page: Path) -> set[str]:
    """The page's Markdown headings, outside fenced code blocks (a map's wall rows start with '#' too)."""
    headings, fenced = set(), False
    for ln in page.read_text().splitlines():
        fenced ^= ln.startswith("```")
        if ln.startswith("#") and not fenced:
            headings.add(ln.lstrip("#").strip())
    return headings


def test_every_pointer_names_an_existing_page_and_section():
    pointers = 0
    for path in _sources():
        text = _joined(path.read_text())
        for match in _POINTER.finditer(text):
            page = DOCS / match.group(1)
            assert page.is_file(), f"{path.relative_to(ROOT)} points at {page.relative_to(ROOT)}, which is missing"
            for quoted in re.findall(_TITLE, match.group(2) or ""):
                assert quoted[1:-1] in _headings(page), (
                    f"{path.relative_to(ROOT)} points at section {quoted} of {page.name}, which has no such heading")
            pointers += 1
        principles = len(re.findall(r"^\d+\. \*\*", (DOCS / "design.md").read_text(), flags=re.M))
        for number in _PRINCIPLE.findall(text):
            assert 1 <= int(number) <= principles, f"{path.relative_to(ROOT)} cites principle {number}"
    assert pointers >= 30, f"only {pointers} pointers found: the pattern no longer matches how the code cites docs"


def test_the_pattern_reads_every_form_of_pointer():
    """The forms the code uses, so that the test above checks what it claims to (each would pass unchecked if the
    pattern missed it)."""
    forms = {
        "(docs/paper-vs-reference.md, 'ISR data').": ["'ISR data'"],
        "docs/paper-vs-reference.md ('ISR data' to 'ISR\n    held-out split')": ["'ISR data'", "'ISR held-out split'"],
        "(docs/paper-vs-reference.md, 'Policy and PPO', 'Phase lengths and\n  seeds')":
            ["'Policy and PPO'", "'Phase lengths and seeds'"],
        "(as docs/paper-vs-reference.md,\n# \"Figure 5's maps\", prints them)": ["\"Figure 5's maps\""],
        "[docs/x.md](../docs/paper-vs-reference.md), 'Policy and\nPPO')": ["'Policy and PPO'"],
    }
    for text, titles in forms.items():
        found = [t for m in _POINTER.finditer(_joined(text)) for t in re.findall(_TITLE, m.group(2) or "")]
        assert found == titles, (text, found)


def test_no_pointer_to_documents_outside_the_repository():
    gone = ("PAPER" + "-SPEC", "DESIGN" + ".md")  # planning files that never shipped with the package
    for path in _sources():
        text = path.read_text()
        for name in gone:
            assert name not in text, f"{path.relative_to(ROOT)} still cites {name}"


def test_the_options_the_page_names_are_the_codes():
    """Each option name in the paper-vs-reference page is one the code accepts, and the page names it."""
    from internalize.agents.isr_config import ENCODINGS, NETWORKS
    from internalize.experiments.spec import WorldSpec
    from internalize.social.conditions import NAMED
    from internalize.social.utility import MODES
    from internalize.worlds.prosocial import DROPS, HELPERS
    from internalize.worlds.prosocial_layouts import RULES

    page = (DOCS / "paper-vs-reference.md").read_text()
    world_keys = {f.name for f in dataclasses.fields(WorldSpec)}
    named = {
        "additive": MODES, "additive-reference": MODES, "threshold-replace": MODES, "replace": MODES,
        "frozen": NAMED, "frozen-continued": NAMED, "policy": NETWORKS, "reference": NETWORKS,
        "channel": ENCODINGS, "onehot": ENCODINGS, "check_reachable": world_keys, "n_walls": world_keys,
        "drop": world_keys, "helper": world_keys, "noop": DROPS, "reference-dfs": HELPERS, "tree": RULES,
    }
    for option, allowed in named.items():
        assert option in allowed, f"the page names {option!r}, which the code does not accept"
        assert re.search(rf"[`\"]{re.escape(option)}[`\" ]", page), f"the page does not name {option!r}"


@pytest.mark.parametrize("page", ["design.md", "paper-vs-reference.md"])
def test_the_readme_links_each_page(page):
    assert f"](docs/{page})" in (ROOT / "README.md").read_text()
