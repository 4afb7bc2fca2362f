"""Transports: the HTTP API and the WebSocket endpoint, over the domain and the bus."""
