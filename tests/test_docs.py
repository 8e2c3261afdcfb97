"""The documentation checked against the code, so that it cannot drift silently.

Hooks: every hook specification has its own section in docs/hooks.md, under the right group, with
an example, and no section documents a hook that does not exist. The order state diagram in
docs/concepts.md has exactly the transitions of ``orderlane.model.TRANSITIONS``; its event table
names every event class and the hook it arrives through; its error tree is the one in the
docstring of ``orderlane.errors``. The examples a reader is told to run do run.

``python tests/test_docs.py`` prints the state diagram generated from the transition table;
``python tests/test_docs.py --catalogue`` rewrites the scenario catalogue of
docs/writing-an-adapter.md from the registered scenarios (their ``proves=`` texts).
"""

from __future__ import annotations

import ast
import inspect
import itertools
import re
import textwrap
from collections.abc import Callable
from decimal import Decimal
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

import orderlane.errors
import orderlane.events
from orderlane import Engine, FakeClock, OrderStatus, Signal, hookspecs
from orderlane.events import Event
from orderlane.model import TERMINAL_STATUSES, TRANSITIONS
from orderlane.plugins import COMMAND_GROUP

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
DOC_PAGES = sorted(DOCS.glob("*.md"))

FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
HOOK_HEADING = re.compile(r"^(#{1,6})\s+`?(orderlane_\w+)`?\s*$", re.MULTILINE)
GROUP_HEADING = re.compile(r"^#\s+(\w+)", re.MULTILINE)
ARROW = re.compile(r"^\s*(\[\*\]|\w+)\s*-->\s*(\[\*\]|\w+)\s*(?::.*)?$")

Edge = tuple[str, str]


def fenced_blocks(text: str, language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(text) if lang == language]


def block_named(path: Path, first_line: str) -> str:
    """The python block of ``path`` whose first line is ``first_line`` (a file-name comment)."""
    found = [
        block
        for block in fenced_blocks(path.read_text(), "python")
        if block.splitlines()[0].strip() == first_line
    ]
    assert len(found) == 1, f"{path.name} should have one python block starting {first_line!r}"
    return found[0]


def section(text: str, heading: str) -> str:
    """The body of the ``## heading`` section (up to the next heading of level 1 or 2)."""
    match = re.search(rf"^##\s+{re.escape(heading)}\s*$(.*?)(?=^#{{1,2}}\s|\Z)", text, re.M | re.S)
    assert match is not None, f"no section '## {heading}'"
    return match.group(1)


# ------------------------------------------------------------------ hooks


def hookspec_names() -> set[str]:
    """Every function in orderlane.hookspecs named orderlane_* that carries the spec marker."""
    marker = f"{hookspecs.PROJECT}_spec"
    return {
        name
        for name, value in vars(hookspecs).items()
        if name.startswith("orderlane_")
        and inspect.isfunction(value)
        and getattr(value, marker, None) is not None
    }


def hooks_page() -> str:
    return (DOCS / "hooks.md").read_text()


def documented_hooks(text: str) -> list[tuple[int, str]]:
    """(heading level, hook name) of every heading whose text is a hook-like name."""
    return [(len(hashes), name) for hashes, name in HOOK_HEADING.findall(FENCE.sub("", text))]


def test_hookspecs_are_found() -> None:
    specs = hookspec_names()
    assert specs == set(
        hookspecs.ADAPTER_HOOKS
        + hookspecs.RETRY_HOOKS
        + hookspecs.LIMITER_HOOKS
        + hookspecs.OBSERVER_HOOKS
    )
    assert "orderlane_place_order" in specs


def test_every_hookspec_has_a_section_in_hooks_md() -> None:
    documented = {name for level, name in documented_hooks(hooks_page()) if level == 2}
    missing = sorted(hookspec_names() - documented)
    assert not missing, f"docs/hooks.md has no '## <hook>' section for {missing}"


def test_hooks_md_documents_only_hooks_that_exist_once_each() -> None:
    headings = documented_hooks(hooks_page())
    unknown = sorted({name for _, name in headings} - hookspec_names())
    assert not unknown, f"docs/hooks.md documents hooks that do not exist: {unknown}"
    wrong_level = sorted(name for level, name in headings if level != 2)
    assert not wrong_level, f"hook headings must be '## <hook>': {wrong_level}"
    names = [name for _, name in headings]
    repeated = sorted({name for name in names if names.count(name) > 1})
    assert not repeated, f"docs/hooks.md documents these hooks more than once: {repeated}"


def test_hooks_are_documented_under_their_group() -> None:
    expected = {
        "Execution": set(hookspecs.ADAPTER_HOOKS),
        "Tracking": set(hookspecs.ADAPTER_HOOKS),
        "Retry": set(hookspecs.RETRY_HOOKS),
        "Limiter": set(hookspecs.LIMITER_HOOKS),
        "Observer": set(hookspecs.OBSERVER_HOOKS),
    }
    text = FENCE.sub("", hooks_page())  # a comment in an example is no heading
    groups = list(GROUP_HEADING.finditer(text))
    assert [g.group(1) for g in groups[1:]] == list(expected), "group headings changed"
    for group, following in zip(groups, [*groups[1:], None], strict=True):
        if group.group(1) not in expected:
            continue  # the page title
        body = text[group.end() : following.start() if following else len(text)]
        names = {name for _, name in documented_hooks(body)}
        misplaced = sorted(names - expected[group.group(1)])
        assert not misplaced, f"{misplaced} do not belong under '# {group.group(1)}'"


@pytest.mark.parametrize("hook", sorted(hookspec_names()))
def test_each_hook_section_has_an_example_implementation(hook: str) -> None:
    body = section(hooks_page(), hook)
    for label in ("**Implemented by:**", "**Called:**", "**Returns:**"):
        assert label in body, f"the section of {hook} does not say {label}"
    examples = fenced_blocks(body, "python")
    assert examples, f"the section of {hook} has no python example"
    tree = ast.parse(examples[0])
    implementations = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name == hook
        and any(ast.unparse(decorator) == "hookimpl" for decorator in node.decorator_list)
    ]
    assert implementations, f"the example of {hook} does not define it with @hookimpl"
    spec_args = set(inspect.signature(getattr(hookspecs, hook)).parameters)
    args = {arg.arg for arg in implementations[0].args.args} - {"self"}
    assert args <= spec_args, f"the example of {hook} takes {args - spec_args}, not in the spec"


# ------------------------------------------------------------------ states


def transition_edges() -> set[Edge]:
    return {
        (source.value, target.value)
        for source, targets in TRANSITIONS.items()
        for target in targets
    }


def state_diagram() -> str:
    """The mermaid state diagram of TRANSITIONS, as docs/concepts.md shows it."""
    lines = ["stateDiagram-v2", "    [*] --> CREATED"]
    for source in OrderStatus:
        lines += [
            f"    {source.value} --> {target.value}"
            for target in OrderStatus
            if target in TRANSITIONS[source]
        ]
    lines += [f"    {status.value} --> [*]" for status in OrderStatus if status.is_terminal]
    return "\n".join(lines) + "\n"


def diagram_edges(diagram: str) -> list[Edge]:
    lines = [line for line in diagram.splitlines()[1:] if line.strip()]
    edges = []
    for line in lines:
        match = ARROW.match(line)
        assert match is not None, f"not a transition line in the diagram: {line!r}"
        edges.append((match.group(1), match.group(2)))
    return edges


def test_generated_diagram_round_trips() -> None:
    edges = diagram_edges(state_diagram())
    assert {edge for edge in edges if "[*]" not in edge} == transition_edges()


def test_state_diagram_has_exactly_the_transition_table() -> None:
    [diagram] = fenced_blocks((DOCS / "concepts.md").read_text(), "mermaid")
    assert diagram.startswith("stateDiagram")
    edges = diagram_edges(diagram)
    repeated = sorted({edge for edge in edges if edges.count(edge) > 1})
    assert not repeated, f"transitions drawn twice: {repeated}"
    drawn = {edge for edge in edges if "[*]" not in edge}
    missing = sorted(transition_edges() - drawn)
    extra = sorted(drawn - transition_edges())
    assert not missing, (
        f"docs/concepts.md lacks transitions {missing}; print it with `python tests/test_docs.py`"
    )
    assert not extra, f"docs/concepts.md draws transitions the table forbids: {extra}"
    assert {target for source, target in edges if source == "[*]"} == {"CREATED"}
    assert {source for source, target in edges if target == "[*]"} == {
        status.value for status in TERMINAL_STATUSES
    }


# ------------------------------------------------------------------ events and errors


def event_classes() -> dict[str, type[Event]]:
    return {
        name: value
        for name, value in vars(orderlane.events).items()
        if inspect.isclass(value) and issubclass(value, Event) and value is not Event
    }


def test_event_table_lists_every_event_and_its_hook() -> None:
    rows = re.findall(
        r"^\|\s*`(\w+)`\s*\|\s*`(orderlane_\w+)`\s*\|", section(_concepts(), "Events"), re.M
    )
    documented = dict(rows)
    assert len(documented) == len(rows), "an event is listed twice"
    classes = event_classes()
    assert set(documented) == set(classes), "the event table and orderlane.events differ"
    for name, cls in classes.items():
        assert documented[name] == cls.hook, f"{name} arrives through {cls.hook}"
        assert cls.hook in hookspecs.OBSERVER_HOOKS


def tree_shape(tree: str) -> list[tuple[int, str]]:
    """(indentation, class name) of each line of an error tree drawing."""
    shape = []
    for line in textwrap.dedent(tree).splitlines():
        if line.strip():
            name = line.split()[0]
            shape.append((len(line) - len(line.lstrip()), name))
    return shape


def test_error_tree_is_the_one_in_the_errors_docstring() -> None:
    docstring = inspect.getdoc(orderlane.errors) or ""
    source_tree = docstring.split("::", 1)[1].split("\n\n")[1]
    [documented] = [
        block
        for block in fenced_blocks(section(_concepts(), "Errors"), "")
        if block.startswith("OrderlaneError")
    ]
    assert tree_shape(documented) == tree_shape(source_tree), (
        "the error tree in docs/concepts.md differs from the docstring of orderlane.errors"
    )
    assert {name for _, name in tree_shape(documented)} == set(orderlane.errors.__all__)


def _concepts() -> str:
    return (DOCS / "concepts.md").read_text()


# ------------------------------------------------------------------ README


def test_readme_starts_with_the_two_commands() -> None:
    blocks = fenced_blocks(README.read_text(), "bash")
    assert blocks[:2] == [
        "python3 -m pip install ./core ./adapters/mock ./adapters/kis ./contrib/web"
        " ./contrib/redis-limiter ./contrib/prometheus && orderlane demo\n",
        'python3 -m pip install -e "./core[test]" -e ./adapters/mock -e "./adapters/kis[fake]"'
        ' -e "./contrib/web[test]" -e ./contrib/redis-limiter -e ./contrib/prometheus'
        " && python3 -m pytest\n",
    ]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert blocks[1].strip() in ci  # CI runs the README's test command to the letter


def cli_commands(command: Any, prefix: tuple[str, ...] = ()) -> set[str]:
    """Every runnable command of the typer app, as ``"order buy"``."""
    subcommands = getattr(command, "commands", None)
    if subcommands is None:
        return {" ".join(prefix)}
    return {
        path for name, sub in subcommands.items() for path in cli_commands(sub, (*prefix, name))
    }


def test_quickstart_lists_every_cli_command_and_no_other() -> None:
    import typer

    from orderlane.cli import app

    body = section((DOCS / "quickstart.md").read_text(), "The command line")
    rows = re.findall(r"^\| `orderlane ([^`]*)`", body, re.MULTILINE)
    documented = {
        " ".join(itertools.takewhile(lambda word: re.fullmatch(r"[a-z][a-z-]*", word), row.split()))
        for row in rows
    }
    # Command groups of other distributions (entry points ``orderlane.commands``, added when the
    # command line runs) are documented with those distributions.
    plugins = {ep.name for ep in entry_points(group=COMMAND_GROUP)}
    commands = {
        command
        for command in cli_commands(typer.main.get_command(app))
        if command.split()[0] not in plugins
    }
    assert documented == commands, (
        f"docs/quickstart.md lists {sorted(documented - commands)} that do not exist and "
        f"lacks {sorted(commands - documented)}"
    )


def test_every_python_block_in_the_docs_parses() -> None:
    for page in [README, *DOC_PAGES]:
        for number, block in enumerate(fenced_blocks(page.read_text(), "python"), 1):
            try:
                ast.parse(block)
            except SyntaxError as error:
                pytest.fail(f"{page.name}, python block {number}: {error}")


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the headings of ``page``."""
    text = FENCE.sub("", page.read_text())
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", text, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_doc_links_point_at_existing_pages_and_headings() -> None:
    for page in [README, *DOC_PAGES]:
        for target, anchor in re.findall(r"\]\(([^)#:]*\.md|)(?:#([^)]*))?\)", page.read_text()):
            linked = page if not target else page.parent / target
            assert linked.is_file(), f"{page.name} links to missing {target}"
            if anchor:
                assert anchor in anchors(linked), f"{page.name}: no heading for {target}#{anchor}"


def _run_script(code: str, filename: str) -> None:
    exec(compile(code, filename, "exec"), {"__name__": "__main__"})


@pytest.fixture
def in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory of its own and a journal inside it, for scripts run from the docs."""
    monkeypatch.chdir(tmp_path)
    database = tmp_path / "docs-journal.db"
    monkeypatch.setenv("ORDERLANE_DATABASE_URL", f"sqlite:///{database}")
    return database


def test_readme_library_example_runs(in_tmp_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    [example] = fenced_blocks(README.read_text(), "python")
    _run_script(example, "README.md")

    out = capsys.readouterr().out
    assert "filled 10 x 005930 @ 72000" in out
    assert "position 005930: 10 @ 72000" in out
    assert ": CREATED -> SUBMITTING" in out
    assert ": SUBMITTING -> FILLED" in out
    assert re.search(r"^FILLED M[0-9A-F]{6}-00000001 72000$", out, re.MULTILINE)
    assert in_tmp_dir.exists(), "the example should use ORDERLANE_DATABASE_URL"


def test_quickstart_strategy_prints_what_the_page_says(
    in_tmp_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = DOCS / "quickstart.md"
    _run_script(block_named(page, "# strategy.py"), "strategy.py")
    first = capsys.readouterr().out
    _run_script(block_named(page, "# strategy.py"), "strategy.py")
    second = capsys.readouterr().out

    [printed] = [block for block in fenced_blocks(page.read_text(), "") if "bought" in block]
    assert first == printed
    assert second == first, "a second run sends nothing and prints the same"
    assert in_tmp_dir.exists()


# ------------------------------------------------------------------ writing an adapter


def _load_paper_adapter() -> Callable[[dict[str, Any]], Any]:
    namespace: dict[str, Any] = {"__name__": "orderlane_paper.adapter"}
    code = block_named(DOCS / "writing-an-adapter.md", "# src/orderlane_paper/adapter.py")
    exec(compile(code, "orderlane_paper/adapter.py", "exec"), namespace)
    factory: Callable[[dict[str, Any]], Any] = namespace["create_adapter"]
    return factory


async def test_the_adapter_example_trades_through_an_engine(sqlite_url: str) -> None:
    create_adapter = _load_paper_adapter()
    adapter = create_adapter({"price": "72000", "cash": "1000000"})
    async with Engine.open(adapter, database_url=sqlite_url, clock=FakeClock()) as engine:
        assert engine.broker.info.name == "paper"
        bought = await engine.execute(Signal("005930", "BUY", 10))
        too_big = await engine.execute(Signal("005930", "BUY", 100))
        refreshed = await engine.broker.order_status(bought)
        repeated = await engine.broker.place_order(bought)  # client order ids deduplicate

    assert bought.status is OrderStatus.FILLED
    assert bought.average_fill_price == Decimal(72000)
    assert too_big.status is OrderStatus.REJECTED
    assert too_big.reason is not None
    assert "InsufficientBalanceError" in too_big.reason
    assert refreshed.filled_quantity == 10
    assert repeated.broker_order_id == bought.broker_order_id
    assert adapter.cash == Decimal(1000000 - 72000 * 10)


def test_harness_table_names_every_member_of_the_protocol() -> None:
    from orderlane.testing.harness import VenueHarness

    body = section((DOCS / "writing-an-adapter.md").read_text(), "Running the conformance suite")
    rows = [line for line in body.splitlines() if line.startswith("| `")]
    documented = {
        name for row in rows for name in re.findall(r"`(\w+)(?:\(\))?`", row.split("|")[1])
    }
    members = {name for name in vars(VenueHarness) if not name.startswith("_")}
    assert documented == members, "the harness table in writing-an-adapter.md is out of date"


def test_the_adapter_example_refuses_unknown_options() -> None:
    create_adapter = _load_paper_adapter()
    with pytest.raises(orderlane.errors.ConfigurationError, match="unknown"):
        create_adapter({"prize": "1"})


# ------------------------------------------------------------------ the scenario catalogue

GUIDE = DOCS / "writing-an-adapter.md"
CATALOGUE_START = (
    "<!-- scenario catalogue: generated by `python tests/test_docs.py --catalogue` -->"
)
CATALOGUE_END = "<!-- end of the scenario catalogue -->"


def scenario_catalogue() -> str:
    """The guide's scenario catalogue, generated from the registered scenarios' own texts."""
    from orderlane.testing import SCENARIOS

    lines = ["| scenario | needs | a pass proves |", "|---|---|---|"]
    for row in SCENARIOS.values():
        name = f"`{row.id}`"
        if row.variants:
            name += " (" + ", ".join(f"`{variant}`" for variant in row.variants) + ")"
        needs = ", ".join(sorted(capability.value for capability in row.requires)) or "—"
        proves = row.proves
        if row.proves_with_client_order_id:
            proves += f"; *with `client_order_id`:* {row.proves_with_client_order_id}"
        if row.venue_time:
            proves += " (times the venue's window)"
        lines.append(f"| {name} | {needs} | {proves} |")
    changed = [f"`{row.id}`" for row in SCENARIOS.values() if row.proves_with_client_order_id]
    lines += ["", f"Rows that mean something else with `client_order_id`: {', '.join(changed)}."]
    return "\n".join(lines) + "\n"


def written_catalogue(text: str) -> str:
    start, end = text.index(CATALOGUE_START), text.index(CATALOGUE_END)
    return text[start + len(CATALOGUE_START) : end].strip("\n") + "\n"


def write_catalogue() -> None:
    """Replace the catalogue in the guide with the one the scenarios say."""
    text = GUIDE.read_text()
    start, end = text.index(CATALOGUE_START), text.index(CATALOGUE_END)
    fresh = f"{CATALOGUE_START}\n\n{scenario_catalogue()}\n"
    GUIDE.write_text(text[:start] + fresh + text[end:])


def test_the_guide_s_scenario_catalogue_is_the_one_the_scenarios_say() -> None:
    assert written_catalogue(GUIDE.read_text()).strip() == scenario_catalogue().strip(), (
        "the scenario catalogue in docs/writing-an-adapter.md is out of date: "
        "run python tests/test_docs.py --catalogue"
    )


def test_the_catalogue_names_every_case_and_the_client_order_id_rows() -> None:
    from orderlane.testing import SCENARIOS, select_cases

    table = written_catalogue(GUIDE.read_text())
    for case in select_cases():
        assert f"`{case.variant or case.scenario.id}`" in table
    changed = [row for row in SCENARIOS.values() if row.proves_with_client_order_id]
    assert {"ambiguous-accepted", "garbled-place-answer"} <= {row.id for row in changed}
    for row in changed:
        assert row.proves_with_client_order_id in table


TEMPLATE = ROOT / "contrib" / "adapter-template"


def test_the_guide_s_test_module_is_where_an_adapter_keeps_it() -> None:
    # Step 1's tree, step 8's block and the template agree on where the suite's module lives.
    code = block_named(GUIDE, "# tests/test_conformance.py")
    assert 'pytest_plugins = ["orderlane.testing.plugin"]' in code
    assert "└── test_conformance.py" in section(GUIDE.read_text(), "Step 1: the package")
    assert (TEMPLATE / "tests" / "test_conformance.py").is_file()


def test_every_file_the_template_readme_names_exists() -> None:
    readme = (TEMPLATE / "README.md").read_text()
    named = re.findall(r"^\| `([^`]+)` \|", readme, re.M)
    assert "tests/test_conformance.py" in named
    assert [name for name in named if not (TEMPLATE / name).is_file()] == []


def test_the_mock_readme_lists_every_adapter_option() -> None:
    from orderlane_mock.adapter import create_adapter

    readme = (ROOT / "adapters" / "mock" / "README.md").read_text()
    listed = {
        name
        for cell in re.findall(r"^\| (`[^|]+`) \|", readme, re.M)
        for name in re.findall(r"`([a-z_]+)`", cell)
    }
    with pytest.raises(orderlane.errors.ConfigurationError) as refused:
        create_adapter({"no_such_option": 1})
    known = set(re.findall(r"'([a-z_]+)'", str(refused.value).partition("known:")[2]))
    assert listed == known - {"venue"}  # a MockVenue object: for code, not for the command line


def test_the_guide_installs_orderlane_the_way_the_template_s_fresh_environment_does() -> None:
    # tests/contrib/test_adapter_template.py builds core's wheel and installs it, then the
    # template, in a new virtual environment: the guide's "Before you start" in earnest.
    guide = GUIDE.read_text()  # (the section's shell block has comment lines starting '#')
    before = guide[guide.index("## Before you start") : guide.index("## Step 1: the package")]
    assert "pip wheel --no-deps -w dist path/to/orderlane/core" in before
    assert "pip install dist/orderlane-*.whl" in before
    assert "pip install -e path/to/orderlane/core" in before
    assert 'asyncio_mode = "auto"' in before
    fresh = (ROOT / "tests" / "contrib" / "test_adapter_template.py").read_text()
    assert '"pip", "wheel", "--quiet", "--no-deps", "-w", dist, ROOT / "core"' in fresh
    assert 'glob("orderlane-*.whl")' in fresh


def test_the_socket_harness_excerpt_is_the_example_s_code() -> None:
    block = block_named(GUIDE, "# tests/adapters/loopback/loopback_venue.py (excerpt)")
    source = (ROOT / "tests" / "adapters" / "loopback" / "loopback_venue.py").read_text()
    missing = [
        line
        for line in block.splitlines()[1:]
        if line.strip() and textwrap.dedent(line).strip() not in source
    ]
    assert missing == [], "lines of the excerpt the example does not have"


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--catalogue"]:
        write_catalogue()
        print(f"wrote the scenario catalogue into {GUIDE.relative_to(ROOT)}")
    else:
        print(f"```mermaid\n{state_diagram()}```")


# ------------------------------------------------------------------ limiter plugin example


async def test_the_toy_limiter_plugin_of_the_docs_is_chosen_through_the_hook(
    sqlite_url: str,
) -> None:
    """The spaced limiter of retry-and-rate-limits.md, registered and named as the page says,
    paces every request of the engine and is what ``engine.stats()`` shows."""
    import time

    from orderlane import EngineConfig, RateLimit
    from orderlane_mock import MockAdapter, MockVenue

    namespace: dict[str, Any] = {"__name__": "spaced_limiter"}
    code = block_named(DOCS / "retry-and-rate-limits.md", "# spaced_limiter.py")
    exec(compile(code, "spaced_limiter.py", "exec"), namespace)
    venue = MockVenue()
    venue.enforce_rate_limit(4, 1.0, time.monotonic)
    adapter = MockAdapter(venue, rate_limits=(RateLimit(4, 1.0),))
    config = EngineConfig(rate_limiter="spaced", track=False)
    plugin = namespace["SpacedLimiterPlugin"]()
    async with Engine.open(adapter, plugins=[plugin], config=config, database_url=sqlite_url) as e:
        assert type(e.limiter).__name__ == "SpacedLimiter"
        orders = [await e.execute(Signal("005930", "BUY", 1)) for _ in range(5)]
        stats = e.stats()["rate_limiter"]
    assert [order.status for order in orders] == [OrderStatus.FILLED] * 5
    assert stats["backend"] == "spaced"
    assert stats["granted"] == {"order": 5}
    assert venue.max_arrivals_in_window() <= 4
    assert venue.rate_limit_rejections == 0
