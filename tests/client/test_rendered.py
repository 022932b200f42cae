"""The client's rendered tree (``client.rendered.RenderedTree``): LiveView's
diff format merged as Phoenix's ``rendered.js`` merges it, flat and nested,
and rendered to the HTML Phoenix's client would build."""

from __future__ import annotations

import pytest

from client.live_page import LivePage
from client.rendered import RenderedTree

pytestmark = pytest.mark.timeout(10)


def test_a_flat_tree_takes_changed_dynamics():
    tree = RenderedTree({"0": "a", "1": "b", "s": ["<p>", "|", "</p>"]})
    assert tree.html() == "<p>a|b</p>"
    tree.apply({"1": "c"})
    assert tree.html() == "<p>a|c</p>"


def test_a_diff_with_statics_replaces_the_tree():
    tree = RenderedTree({"0": "a", "s": ["<p>", "</p>"]})
    tree.apply({"0": "x", "1": "y", "s": ["<i>", "-", "</i>"]})
    assert tree.html() == "<i>x-y</i>"


def test_nested_trees_merge_key_wise():
    tree = RenderedTree(
        {
            "0": {"0": "cat.png", "1": "10", "s": ['<li data-name="', '">', "%</li>"]},
            "1": "done",
            "s": ["<ul>", "</ul><p>", "</p>"],
        }
    )
    assert tree.html() == '<ul><li data-name="cat.png">10%</li></ul><p>done</p>'
    tree.apply({"0": {"1": "42"}})  # one field of one nested tree: its statics and siblings stay
    assert tree.html() == '<ul><li data-name="cat.png">42%</li></ul><p>done</p>'
    tree.apply({"0": {"0": "dog.png", "1": "1", "s": ["<b>", ":", "</b>"]}})  # a new subtree replaces the old
    assert tree.html() == "<ul><b>dog.png:1</b></ul><p>done</p>"
    tree.apply({"0": ""})  # a subtree may become a plain string, and back
    assert tree.html() == "<ul></ul><p>done</p>"


def test_a_comprehension_diff_replaces_its_rows_and_keeps_its_statics():
    tree = RenderedTree(
        {"0": {"d": [["a", "1"], ["b", "2"]], "s": ["<li>", "=", "</li>"]}, "s": ["<ul>", "</ul>"]}
    )
    assert tree.html() == "<ul><li>a=1</li><li>b=2</li></ul>"
    tree.apply({"0": {"d": [["b", "3"]]}})
    assert tree.html() == "<ul><li>b=3</li></ul>"
    tree.apply({"0": {"d": []}})
    assert tree.html() == "<ul></ul>"


def test_rows_may_hold_nested_trees_with_shared_templates():
    tree = RenderedTree(
        {
            "0": {
                "d": [["a", {"0": "x", "s": 0}], ["b", {"0": "y", "s": 0}]],
                "s": ["<li>", "", "</li>"],
                "p": {"0": ["<em>", "</em>"]},
            },
            "s": ["", ""],
        }
    )
    assert tree.html() == "<li>a<em>x</em></li><li>b<em>y</em></li>"


def test_keyed_comprehensions_change_move_and_drop_entries():
    tree = RenderedTree(
        {
            "0": {"k": {"0": {"0": "a"}, "1": {"0": "b"}, "2": {"0": "c"}, "kc": 3}, "s": ["<li>", "</li>"]},
            "s": ["<ul>", "</ul>"],
        }
    )
    assert tree.html() == "<ul><li>a</li><li>b</li><li>c</li></ul>"
    tree.apply({"0": {"k": {"1": {"0": "B"}, "kc": 3}}})  # one entry's field, the others untouched
    assert tree.html() == "<ul><li>a</li><li>B</li><li>c</li></ul>"
    tree.apply({"0": {"k": {"0": 2, "1": [0, {"0": "A"}], "kc": 2, "km": 1}}})  # moves read the old positions
    assert tree.html() == "<ul><li>c</li><li>A</li></ul>"
    tree.apply({"0": {"k": {"kc": 0}}})
    assert tree.html() == "<ul></ul>"


def test_components_render_by_cid_and_merge_their_diffs():
    tree = RenderedTree(
        {"0": 1, "1": 2, "c": {"1": {"0": "one", "s": ["<a>", "</a>"]}, "2": {"0": "two", "s": -1}}, "s": ["", "", ""]}
    )
    assert tree.html() == "<a>one</a><a>two</a>"  # cid 2 shares cid 1's statics
    tree.apply({"c": {"2": {"0": "TWO"}}})
    assert tree.html() == "<a>one</a><a>TWO</a>"
    tree.apply({"c": {"3": {"0": "three", "s": 4}, "4": {"0": "four", "s": ["<u>", "</u>"]}}, "0": 4, "1": 3})
    assert tree.html() == "<u>four</u><u>three</u>"  # positive: the statics of a cid in the same diff


def test_events_title_and_reply_are_not_part_of_the_tree():
    tree = RenderedTree({"0": "a", "s": ["", ""]})
    tree.apply({"0": "b", "e": [["js", {}]], "t": "Title", "r": {"ok": True}})
    assert tree.html() == "b" and "e" not in tree.tree and "t" not in tree.tree


def test_a_diff_is_copied_in_so_the_callers_dict_never_changes():
    nested = {"0": "x", "s": ["<b>", "</b>"]}
    tree = RenderedTree({"0": nested, "s": ["", ""]})
    tree.apply({"0": {"0": "y"}})
    assert nested == {"0": "x", "s": ["<b>", "</b>"]} and tree.html() == "<b>y</b>"


@pytest.mark.parametrize(
    "bad",
    [{"0": "a"}, {"s": "nope"}, {"s": [1, 2]}],
)
def test_a_tree_without_statics_is_refused(bad):
    with pytest.raises(ValueError):
        RenderedTree(bad)


def test_a_template_index_without_templates_is_refused_when_rendered():
    tree = RenderedTree({"0": {"0": "x", "s": 3}, "s": ["", ""]})
    with pytest.raises(ValueError, match="template 3"):
        tree.html()


class _Sock:
    def __init__(self) -> None:
        self.listeners: dict = {}


def test_the_page_is_parsed_only_when_read_after_a_change():
    rendered = {
        "0": {"0": "0", "s": ['<li class="entry" data-ref="0" data-state="', '">x</li>']},
        "s": ['<form phx-submit="save"><ul>', "</ul></form>"],
    }
    page = LivePage(_Sock(), "lv:x", "1", rendered)  # type: ignore[arg-type]  # only listeners is used
    first = page.view
    assert list(first.entries) == ["0"] and first.entries["0"].state == "0"
    assert page.view is first  # nothing changed: not parsed again
    for percent in range(1, 50):
        page._on_push("diff", {"0": {"0": str(percent)}})
    assert page.view is not first and page.view.entries["0"].state == "49"
