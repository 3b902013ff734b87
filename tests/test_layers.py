"""The layers hold: services/ is a library with no UI, and no float touches money."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _printed_by(code: str) -> str:
    """What a fresh interpreter prints running ``code``: a clean ``sys.modules`` for every import test."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout


def test_services_import_no_textual_or_rich() -> None:
    code = (
        "import sys, pkgutil, importlib, services\n"
        "for m in pkgutil.iter_modules(services.__path__): importlib.import_module('services.' + m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in ('textual', 'rich', 'tui', 'widgets'))\n"
        "print(','.join(bad))\n"
    )
    assert _printed_by(code).strip() == ""


def test_the_dashboard_loads_no_simulator_nor_cryptography_until_asked() -> None:
    """Start-up and memory: the simulator is for the demo, cryptography (≈ 10 MB resident) for key files."""
    code = (
        "import sys, tui.cli, tui.app, tui.wiring, services.client, services.signing\n"
        "services.signing.HmacSigner('s').sign('a=1')\n"
        "print(','.join(sorted({n.split('.')[0] for n in sys.modules} & {'cryptography'}"
        " | {n for n in sys.modules if n.startswith('services.simulator')})))\n"
    )
    assert _printed_by(code).strip() == ""


def _services_sources() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text())) for path in sorted((ROOT / "services").glob("*.py"))]


#: Where a float is the point: Prometheus has no other kind of number (the README says so; screen and JSON stay exact).
FLOATS_BY_NATURE = {"metrics.py"}


def test_no_float_calls_in_services() -> None:
    offenders = [
        f"{path.name}:{node.lineno}"
        for path, tree in _services_sources()
        if path.name not in FLOATS_BY_NATURE
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "float"
    ]
    assert offenders == []


def test_every_json_parse_in_services_reads_numbers_as_decimal() -> None:
    offenders = []
    for path, tree in _services_sources():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "loads"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "json"
                and not any(keyword.arg == "parse_float" for keyword in node.keywords)
            ):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_money_models_have_no_float_fields() -> None:
    from services import models

    for name in dir(models):
        model = getattr(models, name)
        fields = getattr(model, "model_fields", None)
        if not isinstance(fields, dict):
            continue
        for field_name, field in fields.items():
            assert "float" not in str(field.annotation), f"{name}.{field_name} is a float"
