"""Test support: private redis-server and roomd processes, and protocol clients."""
