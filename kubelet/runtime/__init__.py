"""The CRI runtime service backed by Docker (server.py, docker.py) and its client (client.py)."""
