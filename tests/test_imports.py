"""Import cost is a feature: the package, the CLI, the log and valuation load no heavy library.

Each check runs in a fresh interpreter (`sys.executable -c ...`), since this test process
has imported everything long before.
"""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

import quotepart
from quotepart.cli import COMMANDS, cli

HEAVY = ("sklearn", "plotly", "matplotlib", "weasyprint", "pandas", "ray", "sepaxml")
DATABASE = ("sqlalchemy", "alembic")


def loaded_after(code: str) -> tuple[set[str], str]:
    """The top-level packages in sys.modules after running `code` in a new interpreter, and its stdout."""
    probe = (
        f"{code}\nimport json, sys\n"
        "print(json.dumps(sorted({name.partition('.')[0] for name in sys.modules})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    *output, modules = done.stdout.rstrip("\n").split("\n")
    return set(json.loads(modules)), "\n".join(output)


@pytest.mark.parametrize(
    ("module", "unwanted"),
    [
        ("quotepart", HEAVY + DATABASE),
        ("quotepart.cli", HEAVY + DATABASE),
        ("quotepart.log", HEAVY + DATABASE),
        ("quotepart.allocation", HEAVY + DATABASE),
        ("quotepart.valuation", HEAVY + DATABASE),
    ],
)
def test_importing_loads_no_heavy_library(module: str, unwanted: tuple[str, ...]) -> None:
    loaded, _ = loaded_after(f"import {module}")
    assert loaded.isdisjoint(unwanted), sorted(loaded & set(unwanted))


def test_the_public_names_resolve_on_first_use() -> None:
    loaded, output = loaded_after(
        "import quotepart\n"
        "print(quotepart.Workspace.__name__, quotepart.init_workspace.__name__,"
        " quotepart.open_workspace.__name__, quotepart.QuotepartError.__name__,"
        " quotepart.__version__)"
    )
    assert (
        output == f"Workspace init_workspace open_workspace QuotepartError {quotepart.__version__}"
    )
    assert "sqlalchemy" in loaded  # the workspace, and what it needs, came on first use
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


def test_the_namespace_lists_its_names_and_refuses_others() -> None:
    assert set(quotepart.__all__) <= set(dir(quotepart))
    from quotepart.workspace import Workspace

    assert quotepart.Workspace is Workspace
    with pytest.raises(AttributeError, match="no attribute 'Workspce'"):
        _ = quotepart.Workspce  # type: ignore[attr-defined]


def test_help_lists_every_command_without_importing_one() -> None:
    loaded, output = loaded_after(
        "import sys\n"
        "from quotepart.cli import main\n"
        "sys.argv = ['quotepart', '--help']\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    assert exit.code == 0\n"
        "print('quotepart modules:', *sorted(m for m in sys.modules if m.startswith('quotepart')))"
    )
    *helps, modules = output.split("\n")
    listed = {line.split()[0] for line in helps if line.startswith("  ") and line.split()}
    assert set(COMMANDS) <= listed
    assert modules.split()[2:] == [
        "quotepart",
        "quotepart.cli",
        "quotepart.cli._base",
        "quotepart.errors",
    ]
    assert loaded.isdisjoint(HEAVY + DATABASE + ("rich",))


def test_the_kept_short_help_is_the_commands_own() -> None:
    context = click.Context(cli)
    assert cli.list_commands(context) == sorted(COMMANDS)
    for name, lazy in COMMANDS.items():
        command = cli.get_command(context, name)
        assert command is not None
        assert command.name == name
        kept = click.Command(name, help=lazy.short_help).get_short_help_str(1000)
        assert kept == command.get_short_help_str(1000), name


def test_an_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["no-such-command"])
    assert result.exit_code == 2
    assert "No such command 'no-such-command'" in result.stderr
