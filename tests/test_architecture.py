"""The source tree's shape (read with ``ast`` by tests/architecture.py): imports go one way and from
each name's home, each registry's entries are complete, and the sizes a newcomer can read."""

from __future__ import annotations

import pytest

import architecture as arch

FOUND = arch.modules()


def test_no_module_imports_in_a_circle() -> None:
    assert arch.cycles(FOUND) == []


def test_every_name_is_imported_from_its_home() -> None:
    """No module re-exports another's names (a package's ``__init__`` aside): the import graph is true."""
    assert arch.reexports(FOUND) == []


def test_the_wings_never_import_the_driver_or_the_command_line() -> None:
    top = {"stiltsearch.search.driver", "stiltsearch.search.cli"}
    wings = [m for m in FOUND.values() if m.name.startswith("stiltsearch.search.") and m.name.count(".") >= 3]
    wrong = [f"{m.name} -> {i}" for m in wings for i in m.imports & top]
    assert wrong == []


def test_the_trial_side_never_imports_the_driver_side() -> None:
    wrong = [f"{m.name} -> {i}" for m in FOUND.values() if m.name.startswith(("stiltsearch.trainables",
                                                                                 "stiltsearch.spaces"))
             for i in m.imports if i.startswith("stiltsearch.search")]
    assert wrong == []


def test_every_declared_head_kind_has_its_class() -> None:
    from stiltsearch.trainables.heads import HEAD_CLASSES
    from stiltsearch.trainables.tasks.base import HEAD_KINDS

    assert set(HEAD_CLASSES) == set(HEAD_KINDS)
    assert all(cls.kind == kind for kind, cls in HEAD_CLASSES.items())


@pytest.mark.parametrize("kind", ["tasks", "knobs", "objectives", "schedulers", "heads"])
def test_every_registered_entry_is_in_the_generated_reference(kind: str) -> None:
    from stiltsearch.search import registries
    from stiltsearch.search.schedulers.registry import SCHEDULERS
    from stiltsearch.spaces.knobs import KNOBS
    from stiltsearch.trainables.objectives import OBJECTIVES
    from stiltsearch.trainables.tasks import TASKS
    from stiltsearch.trainables.tasks.base import HEAD_KINDS

    names = {"tasks": list(TASKS), "knobs": [k.name for k in KNOBS], "objectives": [o.name for o in OBJECTIVES],
             "schedulers": list(SCHEDULERS), "heads": list(HEAD_KINDS)}[kind]
    page = registries.render(registries.table(kind), markdown=True)
    listed = [line.split(" | ")[0].removeprefix("| ") for line in page.splitlines()[2:]]
    assert set(names) <= set(listed) and len(listed) >= len(names)


def test_the_docs_site_has_a_reference_page_for_every_listing() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("reference", arch.ROOT / "docs" / "hooks" / "reference.py")
    assert spec is not None and spec.loader is not None
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is not installed (the test install brings it)")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    from stiltsearch.search.registries import KINDS

    assert set(hook.PAGES) == set(KINDS)
    nav = (arch.ROOT / "mkdocs.yml").read_text()
    assert all(f"reference/{kind}.md" in nav for kind in KINDS)


def test_no_module_is_over_300_lines_but_the_task_files() -> None:
    big = {m.name: m.lines for m in FOUND.values() if m.lines > 300 and ".trainables.tasks." not in m.name}
    assert big == {}


def test_no_function_is_over_40_lines() -> None:
    long = {f"{m.name}.{name}": n for m in FOUND.values() for name, n in arch.functions(m) if n > 40}
    assert long == {}


def test_any_is_in_at_most_8_percent_of_annotations() -> None:
    """A type alias counts where it is defined (``Row = dict[str, Any]``), once."""
    notes = [a for m in FOUND.values() for a in arch.annotations(m)]
    share = sum(map(arch.uses_any, notes)) / len(notes)
    assert share <= 0.08, f"{share:.1%} of {len(notes)} annotations use Any"
