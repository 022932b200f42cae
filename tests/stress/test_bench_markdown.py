"""``liveupload bench --markdown [FILE]``: a run's tables as Markdown, written
between the figures markers of a page (``docs/benchmarks.md``) and dated by
the run. The run here is a fake result with one row per table: no process
starts, so once is enough."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from benchmarks import cli
from benchmarks.markdown import BEGIN, END, figures, replace_section, write_figures
from benchmarks.params import PRESETS
from benchmarks.scenarios import NAMES, load
from benchmarks.targets import target

pytestmark = pytest.mark.substrates("pool")

STARTED = "2026-01-02T03:04:05+00:00"


def _fake_results() -> dict[str, Any]:
    """Every scenario with one row in each of its tables, and two targets."""
    scenarios: dict[str, Any] = {}
    for name in NAMES:
        section: dict[str, Any] = {"targets": [], "seconds": 1.0}
        for key, _title, columns in load(name).TABLES:
            section[key] = [{column: (7 if spec else "x") for column, _header, spec in columns}]
        scenarios[name] = section
    scenarios["crash"]["targets"] = [
        target("crash to close p99", 0.5, "<", 10.0, "ms"),
        target("crash to report p99", 20.0, "<", 10.0, "ms"),
    ]
    return {
        "started": STARTED,
        "seconds": 42.0,
        "machine": {"cpu_count": 2, "cpu_model": "Test CPU", "memory_total_bytes": 2**30, "os": "TestOS",
                    "python": "3.x", "versions": {"pykka": "4.x"}, "load_average": [1.5, 1.0, 0.5]},
        "params": PRESETS["quick"].with_(substrates=("thread", "pool")).to_json(),
        "scenarios": scenarios,
    }


def test_figures_hold_every_table_dated_by_the_run():
    text = figures(_fake_results(), ["bench/channels.png"])
    assert f"Run started {STARTED}." in text
    assert "machine: 2 x Test CPU" in text and "load average 1.5 at the start" in text
    assert "preset quick, substrates thread, pool, 42.0 s" in text
    for name in NAMES:
        for _key, title, columns in load(name).TABLES:
            assert f"**{title}**" in text
            header = "| " + " | ".join(h for _, h, _ in columns) + " |"
            assert header in text, f"{name}: no table {title!r}"
    assert "| met | crash to close p99 |" in text and "| MISSED | crash to report p99 |" in text
    assert "![channels](bench/channels.png)" in text


def test_the_section_replaces_only_what_lies_between_the_markers():
    page = f"# Benchmarks\n\nhand-written\n\n{BEGIN}\n\nold figures\n\n{END}\n\nafter\n"
    new = replace_section(page, "new figures\n")
    assert new == f"# Benchmarks\n\nhand-written\n\n{BEGIN}\n\nnew figures\n\n{END}\n\nafter\n"
    assert replace_section(new, "new figures\n") == new
    assert replace_section("# Page\n", "figs\n") == f"# Page\n\n{BEGIN}\n\nfigs\n\n{END}\n"


def test_bench_markdown_file_writes_the_page(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "run_scenarios", lambda params, names, progress: _fake_results())
    page = tmp_path / "docs" / "benchmarks.md"
    page.parent.mkdir()
    page.write_text(f"# Benchmarks\n\nWhy the targets are what they are.\n\n{BEGIN}\n{END}\n")
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    args = parser.parse_args(["--quick", "--no-progress", "--no-plots", "--out", str(tmp_path / "out"), "--markdown", str(page)])
    assert args.run(args) == 0

    printed = capsys.readouterr().out
    assert "**targets**" in printed and str(page) in printed
    text = page.read_text()
    assert text.startswith("# Benchmarks\n\nWhy the targets are what they are.\n\n")
    section = text[text.index(BEGIN) : text.index(END)]
    assert f"Run started {STARTED}." in section and "**channels: " in section and "**targets**" in section


def test_a_scenario_after_bare_markdown_is_a_scenario(capsys, monkeypatch, tmp_path):
    ran: list[list[str]] = []

    def fake(params, names, progress):
        ran.append(names)
        return _fake_results()

    monkeypatch.setattr(cli, "run_scenarios", fake)
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    args = parser.parse_args(["--quick", "--no-progress", "--no-plots", "--out", str(tmp_path), "--markdown", "crash"])
    assert args.run(args) == 0
    assert ran == [["crash"]] and "| substrate |" in capsys.readouterr().out
    assert not (tmp_path / "crash").exists()
