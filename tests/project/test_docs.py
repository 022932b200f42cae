"""The Python examples in README.md and docs/*.md run as they are written.

An example is a fenced ``python`` block whose first line is
``# example: NAME``; every ``python`` block must be one, so none goes stale
untested.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import actors

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"```python\n(.*?)```", flags=re.S)
EXAMPLE = re.compile(r"# example: ([^\n]+)\n")


def _blocks() -> list[tuple[str, str]]:
    """``(page, code)`` of every python block, in page order."""
    return [(page.relative_to(ROOT).as_posix(), code) for page in PAGES for code in BLOCK.findall(page.read_text())]


def _examples() -> list[tuple[str, str, str]]:
    """``(page, name, code)`` of every example."""
    examples = []
    for page, code in _blocks():
        match = EXAMPLE.match(code)
        if match:
            examples.append((page, match.group(1), code))
    return examples


EXAMPLES = _examples()


@pytest.mark.pure  # reads files, starts no process: once is enough
def test_every_python_block_is_an_example():
    unmarked = [(page, code.splitlines()[0]) for page, code in _blocks() if not EXAMPLE.match(code)]
    assert not unmarked, f"python blocks without '# example: NAME' (they would not run): {unmarked}"


@pytest.mark.pure
def test_the_pages_have_their_examples():
    names = {(page, name) for page, name, _ in EXAMPLES}
    assert names >= {
        ("README.md", "counter"),
        ("README.md", "echo writer"),
        ("docs/runtime.md", "links, monitors, names and timers"),
        ("docs/supervision.md", "supervision tree"),
        ("docs/uploads.md", "forwarding writer"),
        ("docs/server.md", "embedding"),
        ("docs/server.md", "lifespan"),
    }
    assert len(names) == len(EXAMPLES), "two examples of one page share a name"


@pytest.mark.parametrize("page,name,code", EXAMPLES, ids=[f"{page}: {name}" for page, name, _ in EXAMPLES])
def test_example_runs(page, name, code):
    namespace: dict = {}
    exec(compile(code, f"{page} example: {name}", "exec"), namespace)
    session = namespace.get("session")
    if isinstance(session, actors.ProcessRef):
        actors.await_exit(session, 5)
