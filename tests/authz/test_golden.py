"""Golden decision cases (tests/authz/golden/*.yaml): every rule of DESIGN.md section 4, each
case asserting the decision, its reasons and the audit event it produces."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.authz.golden import build_world, golden_cases, run_case, subset


@pytest.mark.parametrize(
    ("path", "index"),
    [pytest.param(p, i, id=f"{p.stem}: {name}") for p, i, name in golden_cases()],
)
def test_golden_case(path: Path, index: int, tmp_path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    case = doc["cases"][index]
    world = build_world(doc, tmp_path)
    effect, reasons, event = run_case(world, case)
    expect = case["expect"]
    assert effect == expect["effect"], reasons
    for wanted in expect.get("reasons", []):
        assert any(wanted in reason for reason in reasons), (wanted, reasons)
    assert reasons, "every decision carries reasons"
    problems = subset(expect["audit"], event, "audit")
    assert not problems, problems


def test_every_golden_case_asserts_an_audit_event() -> None:
    for path, index, _ in golden_cases():
        case = yaml.safe_load(path.read_text())["cases"][index]
        assert case["expect"].get("audit"), f"{path.name}: {case['name']}"
