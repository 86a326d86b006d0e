"""Every relative link of README.md and docs/*.md reaches a file, and every ``#anchor`` a heading of it
(GitHub's rule: lower case, punctuation other than ``-`` and ``_`` dropped, spaces to ``-``, repeats numbered)."""

from __future__ import annotations

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: pathlib.Path) -> set[str]:
    found, seen, in_code = set(), {}, False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        heading = None if in_code else re.match(r"#+ (.*)", line)
        if heading:
            s = slug(heading.group(1))
            found.add(f"{s}-{seen[s]}" if s in seen else s)
            seen[s] = seen.get(s, 0) + 1
    return found


def test_slugs_follow_githubs_rule():
    assert slug("The `fine` task (thin tubes, small dots): not learned (2026-11-29)") == \
        "the-fine-task-thin-tubes-small-dots-not-learned-2026-11-29"
    assert slug("Speed first: what predicts faster, by how much, and why") == \
        "speed-first-what-predicts-faster-by-how-much-and-why"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_reach_a_file_and_a_heading(page):
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):  # http(s), mailto: not checked here
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no such heading")
    assert not broken, broken
