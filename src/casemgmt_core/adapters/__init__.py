"""Adapters for the ports: storage, notification channels, registries."""
