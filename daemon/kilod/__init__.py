"""kilod: run many AI coding agents in parallel, each sandboxed, each reviewed."""

__version__ = "0.1.0"
