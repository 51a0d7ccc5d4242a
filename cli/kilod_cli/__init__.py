"""kilod's command line: `kilod serve`, `kilod demo`, `kilod doctor`, `kilod ctl <verb>`.

It talks to the daemon only through the HTTP API on its unix socket, and imports
nothing heavy at start-up (no litellm, docker SDK, aiohttp or pydantic), so every
verb answers at once.
"""
