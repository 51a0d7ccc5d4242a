"""Sandboxes: the protocol the daemon uses (base) and its Docker implementation (docker)."""
