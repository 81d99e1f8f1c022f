"""The distributions carry the license, the version and the project's links.

Builds the wheel and the sdist with the build backend's own hooks (no isolated environment, no
network): under a second together."""

from __future__ import annotations

import email.parser
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import casemgmt_core

ROOT = Path(__file__).resolve().parents[1]
BUILD = """
import sys
import hatchling.build as backend
print(backend.build_wheel(sys.argv[1]))
print(backend.build_sdist(sys.argv[1]))
"""


def test_the_version_is_single_sourced() -> None:
    from importlib.metadata import version

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert "version" not in project
    assert project["dynamic"] == ["version"]
    assert casemgmt_core.__version__ == version("casemgmt-core")


def test_the_license_is_apache_2() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert "casemgmt_core contributors" in text


def test_wheel_and_sdist_ship_the_license(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", BUILD, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    wheel_name, sdist_name = done.stdout.split()
    license_text = (ROOT / "LICENSE").read_bytes()

    with zipfile.ZipFile(tmp_path / wheel_name) as wheel:
        names = wheel.namelist()
        info = f"casemgmt_core-{casemgmt_core.__version__}.dist-info"
        assert wheel.read(f"{info}/licenses/LICENSE") == license_text
        assert "casemgmt_core/py.typed" in names
        metadata = email.parser.Parser().parsestr(wheel.read(f"{info}/METADATA").decode())
    assert metadata["Version"] == casemgmt_core.__version__
    assert metadata["License-Expression"] == "Apache-2.0"
    urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL") or [])
    assert set(urls) == {"Homepage", "Documentation", "Changelog", "Issues"}
    assert all(u.startswith("https://github.com/casemgmt-core/casemgmt-core") for u in urls.values())
    extras = set(metadata.get_all("Provides-Extra") or [])
    assert {"test", "lint", "docs", "dev", "postgresql", "mariadb", "async"} <= extras

    with tarfile.open(tmp_path / sdist_name) as sdist:
        top = sdist_name.removesuffix(".tar.gz")
        member = sdist.extractfile(f"{top}/LICENSE")
        assert member is not None
        assert member.read() == license_text
        assert f"{top}/CHANGELOG.md" in sdist.getnames()


def test_the_test_extra_is_lean_and_pinned() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    test = extras["test"]
    assert all("==" in requirement for requirement in test), test
    names = {r.split("==")[0].split("[")[0].lower() for r in test}
    assert not names & {"ruff", "mypy", "mkdocs", "mkdocs-material", "mkdocstrings", "simpy"}
    assert all(r.startswith("types-") or "==" in r for r in extras["lint"])
    assert extras["dev"] == ["casemgmt-core[test,lint,docs]"]
