# kilod's daemon image: `kilod serve`, driving the Docker engine whose socket is mounted.
#
#   DATA=/srv/kilod                                   # any absolute path on the host
#   docker run -d --name kilod --restart unless-stopped \
#     -v /var/run/docker.sock:/var/run/docker.sock \
#     -v "$DATA:$DATA" -e KILOD_DATA_DIR="$DATA" \
#     --group-add "$(stat -c %g /var/run/docker.sock)" \
#     kilod/daemon
#
# The data dir (and every repository a card names) must have the same path inside
# and out: the engine bind-mounts worktrees into sandboxes by their host paths.
# The daemon runs as uid KILOD_UID (default 1000), so $DATA must be writable by it.
# It is in a `docker` group of gid DOCKER_GID (default 999); `--group-add` above, or
# `--build-arg DOCKER_GID=$(stat -c %g /var/run/docker.sock)`, matches the host socket.
#
# Builds FROM debian:bookworm-slim like the sandbox image, so images/build.sh can
# bootstrap the base where no registry is reachable. Network: apt and PyPI only.
# Step order: what changes least comes first (each step costs a layer commit), and
# dependencies install from pyproject.toml alone, so a source edit rebuilds in seconds.
FROM debian:bookworm-slim

ENV VIRTUAL_ENV=/opt/kilod \
    PATH=/opt/kilod/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    KILOD_DATA_DIR=/var/lib/kilod \
    LITELLM_LOCAL_MODEL_COST_MAP=True
# The web board and API on TCP, only with KILOD_HTTP=0.0.0.0:8765 (every request needs
# the bearer token: KILOD_TOKEN, or the one the daemon writes to <data dir>/token).
EXPOSE 8765
# Healthy = the API answers /healthz on its unix socket ($KILOD_SOCKET or <data dir>/kilod.sock).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import socket,sys; from kilod.paths import socket_path; s=socket.socket(socket.AF_UNIX); s.settimeout(4); s.connect(str(socket_path())); s.sendall(b'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n'); sys.exit(0 if s.recv(64).split(b' ')[1:2] == [b'200'] else 1)"]
ENTRYPOINT ["tini", "--", "kilod"]
CMD ["serve"]

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv git ca-certificates tini \
 && rm -rf /var/lib/apt/lists/*

# PEM text of extra CA certificates for pip, only when the build runs behind a
# TLS-inspecting proxy (build-time only; nothing of it stays in the filesystem).
ARG EXTRA_CA_CERTS=""

# Dependencies first, from pyproject.toml alone: source edits keep this layer cached.
COPY pyproject.toml /src/pyproject.toml
RUN set -eu; \
    if [ -n "$EXTRA_CA_CERTS" ]; then \
        cat /etc/ssl/certs/ca-certificates.crt > /tmp/pip-ca.pem; \
        printf '%s\n' "$EXTRA_CA_CERTS" >> /tmp/pip-ca.pem; \
        export PIP_CERT=/tmp/pip-ca.pem; \
    fi; \
    python3 -m venv "$VIRTUAL_ENV"; \
    python3 -c 'import tomllib; print("\n".join(tomllib.load(open("/src/pyproject.toml", "rb"))["project"]["dependencies"]))' \
        > /tmp/requirements.txt; \
    pip install --quiet -r /tmp/requirements.txt 'hatchling>=1.24'; \
    rm -f /tmp/pip-ca.pem /tmp/requirements.txt

# The package itself (.dockerignore lets only its sources in): no network, the
# dependencies and the build backend are in place.
COPY . /src
RUN pip install --quiet --no-deps --no-build-isolation /src \
 && rm -rf /src \
 && kilod --version

# The daemon's user; HOME comes from its passwd entry.
ARG KILOD_UID=1000 DOCKER_GID=999
RUN { getent group "$DOCKER_GID" >/dev/null || groupadd --gid "$DOCKER_GID" docker; } \
 && groupadd --gid "$KILOD_UID" kilod \
 && useradd --uid "$KILOD_UID" --gid kilod --groups "$DOCKER_GID" --create-home --shell /usr/sbin/nologin kilod \
 && install -d -o kilod -g kilod -m 0700 /var/lib/kilod
USER kilod
