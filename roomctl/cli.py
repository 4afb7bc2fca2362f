"""Placeholder until the roomctl issue lands."""

import sys


def main() -> int:
    print("roomctl: not implemented yet", file=sys.stderr)
    return 2
