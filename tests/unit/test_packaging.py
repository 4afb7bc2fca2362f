"""roomd works when installed outside a virtualenv.

Everything roomd reads at run time (protocol codes and schemas, the reference
client, the lobby page, the Lua scripts) ships inside the package. These tests
build a real wheel and install it the ways a sysadmin does - ``--prefix`` (as
Debian's system pip does into /usr/local), ``--target`` and ``--user`` - then
run ``roomd --help`` and serve the packaged files from there.

The wheel build needs the build backend (setuptools) from a package index:
when pip cannot fetch it (offline), the tests are skipped, not failed.
Deselect them with ``-m "not packaging"``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("setup.py", "pyproject.toml", "README.md", "roomd", "roomctl", "protocol")
BUILD_DEPENDENCY_FAILURE = "install build dependencies"  # pip's words when the backend cannot be fetched

# Run by the installed interpreter: load what roomd reads at run time, then serve
# the packaged static files through the real application's routes.
CHECK = r"""
import asyncio, sys
from pathlib import Path

import roomd, roomd.protocol as protocol
site = Path(sys.argv[1]).resolve()
assert Path(roomd.__file__).resolve().is_relative_to(site), roomd.__file__
assert protocol.protocol_dir().resolve().is_relative_to(site), protocol.protocol_dir()
assert protocol.codes()["errors"]["ROOM_NOT_FOUND"]["status"] == 404
assert protocol.ErrorCode.ROOM_FULL.http_status == 400, protocol.ErrorCode.ROOM_FULL.http_status
assert "room:kick" in protocol.client_event_validators()
protocol.validator("server/room.state.json")

import tornado.httpclient, tornado.httpserver, tornado.netutil
from roomd.app import build_services, make_app
from roomd.config import from_env

async def serve() -> None:
    services = build_services(from_env({"ROOMD_ENV": "development"}), "redis://127.0.0.1:1/0")  # never connected
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server = tornado.httpserver.HTTPServer(make_app(services))
    server.add_sockets(sockets)
    base = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
    client = tornado.httpclient.AsyncHTTPClient()
    for path, needle in (("/client/roomd.js", b"WebSocket"), ("/", b"<html"), ("/static/lobby.js", b"")):
        response = await client.fetch(base + path)
        assert response.code == 200 and needle in response.body, (path, response.code)
    server.stop()

asyncio.run(serve())
print("packaged files OK")
"""


@dataclass(frozen=True)
class Install:
    """Where one install put the package, and how to run its interpreter so it finds it."""

    python: str
    site: Path
    scripts: Path
    env: dict[str, str]


def _pip(python: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=100,
        env=env,
        check=False,
    )


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    return {**env, **extra}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of the sources (the work tree gets no build/ or egg-info)."""
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "_protocol")
            shutil.copytree(path, source / name, ignore=ignore)
        elif path.exists():
            shutil.copy2(path, source / name)
    out = tmp_path_factory.mktemp("dist")
    built = _pip(sys.executable, "wheel", "--no-deps", "--wheel-dir", str(out), str(source))
    if built.returncode != 0 and BUILD_DEPENDENCY_FAILURE in built.stdout + built.stderr:
        pytest.skip("pip cannot fetch the build backend here (offline?)")
    assert built.returncode == 0, built.stdout + built.stderr
    (found,) = out.glob("roomd-*.whl")
    return found


def test_the_wheel_carries_every_runtime_file_inside_the_package(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "roomd/py.typed",
        "roomd/_protocol/codes.json",
        "roomd/_protocol/README.md",
        "roomd/_protocol/client/roomd.js",
        "roomd/_protocol/schemas/client/room.kick.json",
        "roomd/_protocol/schemas/server/room.state.json",
        "roomd/static/index.html",
        "roomd/domain/lua/prelude.lua",
        "roomd/domain/lua/throttle.lua",
    ):
        assert needed in names, needed
    outside = sorted(n for n in names if n.split("/")[0] not in ("roomd", "roomctl") and ".dist-info/" not in n)
    assert outside == [], "files installed outside the package are found only when the prefix is sys.prefix"


@pytest.fixture(scope="module", params=["prefix", "target", "user"])
def installed(request: pytest.FixtureRequest, wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Install:
    where = tmp_path_factory.mktemp(request.param)
    if request.param == "prefix":  # pip install --prefix, or Debian's system pip into /usr/local
        done = _pip(
            sys.executable,
            "install",
            "--no-deps",
            "--no-index",
            "--ignore-installed",
            "--prefix",
            str(where),
            str(wheel),
        )
        site = Path(sysconfig.get_path("purelib", vars={"base": str(where), "platbase": str(where)}))
        install = Install(sys.executable, site, where / "bin", _clean_env(PYTHONPATH=str(site)))
    elif request.param == "target":  # pip install --target DIR, found through PYTHONPATH
        done = _pip(
            sys.executable,
            "install",
            "--no-deps",
            "--no-index",
            "--ignore-installed",
            "--target",
            str(where),
            str(wheel),
        )
        install = Install(sys.executable, where, where / "bin", _clean_env(PYTHONPATH=str(where)))
    else:  # pip install --user: refused inside a venv, so the base interpreter installs and runs it
        base = _base_python()
        env = _clean_env(PYTHONUSERBASE=str(where), PYTHONPATH=sysconfig.get_path("purelib"))  # the venv's deps
        if base is None or _pip(base, "--version", env=env).returncode != 0:
            pytest.skip("no base interpreter with pip to run a --user install")
        done = _pip(base, "install", "--no-deps", "--no-index", "--user", str(wheel), env=env)
        site_dir = subprocess.run([base, "-c", "import site; print(site.getusersitepackages())"], env=env,
                                  capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
        install = Install(base, Path(site_dir), where / "bin", env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not (install.site / "roomd").is_symlink()
    # pip uninstalls a distribution it finds in the running environment unless told not to:
    # the venv's own (editable) roomd and its console scripts must survive this test.
    assert (Path(sys.executable).parent / "roomd").exists(), "installing elsewhere removed the venv's roomd"
    return install


def _base_python() -> str | None:
    """The interpreter this venv was made from (its sys.prefix is not the venv's)."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    candidate = Path(sys.base_prefix) / "bin" / version
    return str(candidate) if sys.prefix != sys.base_prefix and candidate.exists() else None


def _run(install: Install, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), capture_output=True, text=True, timeout=60, env=install.env, cwd=install.site.parent, check=False
    )


def test_roomd_help_runs_from_the_install(installed: Install) -> None:
    done = _run(installed, str(installed.scripts / "roomd"), "--help")
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 0, done.stderr
    assert "usage: roomd" in done.stdout


def test_roomctl_help_runs_from_the_install(installed: Install) -> None:
    done = _run(installed, str(installed.scripts / "roomctl"), "--help")
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 0, done.stderr


def test_codes_schemas_and_static_files_load_from_the_install(installed: Install) -> None:
    done = _run(installed, installed.python, "-c", CHECK, str(installed.site))
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 0, done.stderr
    assert "packaged files OK" in done.stdout
