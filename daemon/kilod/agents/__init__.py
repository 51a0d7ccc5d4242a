"""Real agent CLIs (Claude Code, Codex, aider, mini-swe-agent) inside kilod's sandbox.

    catalog.py      which agents exist, the PyPI package and the pinned version of each
    install.py      `kilod agents install`: wheel cache → <data_dir>/agents/<name>/<version>/
                    (stdlib only: the CLI imports it)
    venvs.py        a Python agent's venv for any image: keyed by the image's python3 (path,
                    version, libc), probed once per image id, built on demand (stdlib only)
    helperjob.py    the throwaway container those two run, as data (`Job`), and `Containers`,
                    what runs it; the CLI's runs helper.py as a child process (stdlib only)
    helper.py       `DockerContainers`: helper containers through docker-py (no docker binary),
                    stderr streamed, removed on success, failure, timeout and interrupt
    base.py         the adapter protocol: command line, environment, files, stream → events
    claude_code.py, codex.py, aider.py, mini_swe_agent.py   one adapter each
    forwarder.py    the per-attempt socat sidecar: 127.0.0.1:PORT in the attempt's network
                    namespace → the attempt's gateway unix socket (never mounted in the agent's
                    own container)
    process.py      a detached agent process in the container: output in a file in the state
                    dir, pid recorded, re-attached after a daemon restart, killed by group
    runner.py       `run_agent(ctx) -> AgentResult`: what the pipeline's AGENT step calls

Nothing in this package but runner.py, forwarder.py, process.py and helper.py talks to Docker; nothing talks
to a model: the agents do, through the gateway, with a per-attempt token.
"""
