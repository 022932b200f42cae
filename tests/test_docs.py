"""The README's Python examples run as they are written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
EXAMPLES = re.findall(r"```python\n# example: ([^\n]+)\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_examples():
    assert {name for name, _ in EXAMPLES} >= {"supervision tree", "echo writer", "forwarding writer"}


@pytest.mark.parametrize("name,code", EXAMPLES, ids=[name for name, _ in EXAMPLES])
def test_readme_example_runs(name, code):
    namespace: dict = {}
    exec(compile(code, f"README example: {name}", "exec"), namespace)
    session = namespace.get("session")
    if session is not None:
        import actors

        actors.await_exit(session, 5)
