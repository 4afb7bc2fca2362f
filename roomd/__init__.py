"""roomd: a real-time room server (Tornado + Redis)."""

__version__ = "0.1.0"
