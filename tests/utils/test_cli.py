from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest

from monai_ag.utils.cli import command_parser, run_command

PACKAGE = Path(__file__).resolve().parents[2] / "monai_ag"


def test_run_command_exit_status_and_error_line(capsys):
    parser = command_parser("python -m demo", "A demo.")
    parser.add_argument("--fail", action="store_true")

    def run(args):
        if args.fail:
            raise FileExistsError("out.json already exists")
        print("done")

    assert run_command(parser, ["--quiet"], run) == 0
    assert capsys.readouterr().out == "done\n"
    assert run_command(parser, ["--fail"], run) == 1
    assert capsys.readouterr().err == "error: out.json already exists\n"
    with pytest.raises(RuntimeError, match="a bug"):  # unexpected errors keep their traceback
        run_command(parser, [], lambda args: (_ for _ in ()).throw(RuntimeError("a bug")))


def test_quiet_sets_warning_level(monkeypatch):
    levels = []
    monkeypatch.setattr(logging, "basicConfig", lambda **kw: levels.append(kw["level"]))
    parser = command_parser("python -m demo", "A demo.")
    run_command(parser, ["--quiet"], lambda args: None)
    run_command(parser, [], lambda args: None)
    assert levels == [logging.WARNING, logging.INFO]


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_one_scheme_for_runnable_modules():
    """Commands are packages' ``__main__.py`` files; no other module runs as a script, no lazy ``__getattr__``."""
    scripts, lazy = [], []
    for path in _modules():
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.If) and "__name__" in ast.unparse(node.test) and path.name != "__main__.py":
                scripts.append(str(path.relative_to(PACKAGE)))
            if isinstance(node, ast.FunctionDef) and node.name == "__getattr__" and path.name == "__init__.py":
                lazy.append(str(path.relative_to(PACKAGE)))
    assert scripts == [], f"run these through a package's __main__.py instead: {scripts}"
    assert lazy == [], f"import the package's modules directly instead: {lazy}"
    mains = sorted(str(p.parent.relative_to(PACKAGE)) for p in _modules() if p.name == "__main__.py")
    assert mains == [
        "bench",
        "bundle/export",
        "data/import_ct",
        "data/phantom",
        "metrics",
        "metrics/organ_statistics",
        "visualize",
        "visualize/attention",
    ]
