"""``bastion audit verify --export``: what auditors run offline. A file that is not a json or
ndjson export, or a file that cannot be read, is one ``error:`` line naming it and a non-zero
exit, never ``ok``; a real export still verifies."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.procs import bastion


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cwd = tmp_path_factory.mktemp("verify-export")
    bastion(["init"], cwd=cwd)
    (cwd / "pub.pem").write_text(bastion(["audit", "public-key"], cwd=cwd).stdout)
    for fmt in ("json", "csv"):
        bastion(["audit", "export", "--format", fmt, "-o", f"a.{fmt}"], cwd=cwd)
    return cwd


def verify_export(workdir: Path, name: str) -> tuple[int, str, str]:
    args = ["audit", "verify", "--export", name, "--public-key", "pub.pem"]
    result = bastion(args, cwd=workdir, check=False)
    return result.returncode, result.stdout, result.stderr


def test_offline_verify_of_a_real_export_says_ok(workdir: Path) -> None:
    code, out, err = verify_export(workdir, "a.json")
    assert code == 0 and out.startswith("ok: ") and "verify" in out, err


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("passwd", "root:x:0:0:root:/root:/bin/bash\n", "not a json or ndjson audit export"),
        ("empty.ndjson", "", "the file is empty, not an audit export"),
        ("a.csv", None, "a csv audit export, which cannot be verified"),
        ("t.json", 100, "the export ends early (truncated JSON)"),
        ("nonexist.json", None, "cannot read it: No such file or directory"),
    ],
    ids=["not-an-export", "empty", "csv", "truncated-json", "missing"],
)
def test_offline_verify_refuses_with_one_line_naming_the_file(
    workdir: Path, name: str, content: str | int | None, message: str
) -> None:
    if isinstance(content, str):
        (workdir / name).write_text(content)
    elif isinstance(content, int):
        (workdir / name).write_bytes((workdir / "a.json").read_bytes()[:content])
    code, out, err = verify_export(workdir, name)
    assert code == 1 and out == ""
    [line] = err.splitlines()
    assert line.startswith(f"error: {name}: {message}")
    assert "unexpected" not in err and "Traceback" not in err
