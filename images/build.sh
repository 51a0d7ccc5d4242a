#!/usr/bin/env bash
# Builds kilod's images from images/<name>/Dockerfile.
#
# The Dockerfiles start FROM debian:bookworm-slim, as they would anywhere. Where that
# base is missing and cannot be pulled (no registry on this machine), it is created
# first: debootstrap from the apt mirror this machine is already configured with,
# then `docker import`. Nothing here names a mirror host.
#
# Usage: images/build.sh [sandbox|daemon|proxy|dind ...]    (default: sandbox)
# Env:   KILOD_SANDBOX_IMAGE (default kilod/sandbox), KILOD_PROXY_IMAGE (default kilod/proxy),
#        KILOD_DAEMON_IMAGE (default kilod/daemon), KILOD_DIND_IMAGE (default kilod/dind: the Helm
#        chart's Docker-in-Docker engine from Debian's docker.io, where docker:dind cannot be pulled),
#        KILOD_BASE_IMAGE (default debian:bookworm-slim), KILOD_APT_MIRROR (override the detected mirror),
#        KILOD_IMAGE_FORCE=1 (rebuild even when the image is up to date).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$here/.." && pwd)
base_image=${KILOD_BASE_IMAGE:-debian:bookworm-slim}
suite=bookworm

say() { printf '[images] %s\n' "$*" >&2; }
die() { printf '[images] error: %s\n' "$*" >&2; exit 1; }

command -v docker >/dev/null || die "docker CLI not found; install Docker Engine first"
docker info >/dev/null 2>&1 || die "cannot reach the Docker engine (is dockerd running, may this user use it?)"

# Prints the first configured mirror URI that serves $suite (deb822 .sources or one-line .list).
detect_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk -v suite="$suite" '
            BEGIN { RS=""; FS="\n" }
            {
                uris=""; ok=0; enabled=1
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^URIs:/)    { sub(/^URIs:[ \t]*/, "", $i); uris=$i }
                    if ($i ~ /^Suites:/)  { n = split(substr($i, 8), s, /[ \t]+/); for (j = 1; j <= n; j++) if (s[j] == suite) ok=1 }
                    if ($i ~ /^Enabled:[ \t]*no/) enabled=0
                }
                if (ok && enabled && uris != "") { split(uris, u, /[ \t]+/); print u[1]; exit }
            }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        sed -E 's/\[[^]]*\]//' "$f" | awk -v suite="$suite" '$1 == "deb" && $3 == suite { print $2; exit }'
    done
}

ensure_base() {
    if docker image inspect "$base_image" >/dev/null 2>&1; then
        return
    fi
    say "$base_image is not present; trying to pull it"
    if docker pull "$base_image" >/dev/null 2>&1; then
        return
    fi
    say "no registry reachable: bootstrapping $base_image with debootstrap"
    [ "$(id -u)" = 0 ] || die "debootstrap needs root; run this script with sudo once"
    if ! command -v debootstrap >/dev/null; then
        command -v apt-get >/dev/null || die "debootstrap not found and no apt-get to install it"
        say "installing debootstrap with apt-get"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap; } >/dev/null \
            || die "could not install debootstrap"
    fi
    local mirror=${KILOD_APT_MIRROR:-$(detect_mirror | head -n1)}
    [ -n "$mirror" ] || die "no apt mirror for '$suite' found in /etc/apt/sources.list(.d); set KILOD_APT_MIRROR"
    local rootfs
    rootfs=$(mktemp -d /tmp/kilod-rootfs.XXXXXX)
    say "debootstrap --variant=minbase $suite from the configured mirror (about a minute)"
    debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
        || { tail -n 20 "$rootfs.log" >&2; die "debootstrap failed (log: $rootfs.log)"; }
    rm -f "$rootfs.log"
    # Same trimming the official slim image does: no apt lists, no caches.
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
    say "importing the root filesystem as $base_image"
    tar -C "$rootfs" -c . | docker import \
        --change 'CMD ["bash"]' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        - "$base_image" >/dev/null
    rm -rf "$rootfs"
}

# Rebuilding is cheap: an image whose recorded source hash matches is left alone.
build_one() {
    local name=$1 context tag source_hash current
    case "$name" in
        sandbox) context="$here/sandbox"; tag=${KILOD_SANDBOX_IMAGE:-kilod/sandbox} ;;
        daemon)  context="$repo_root"; tag=${KILOD_DAEMON_IMAGE:-kilod/daemon} ;;
        proxy)   context="$here/proxy"; tag=${KILOD_PROXY_IMAGE:-kilod/proxy} ;;
        dind)    context="$here/dind"; tag=${KILOD_DIND_IMAGE:-kilod/dind} ;;
        *) die "unknown image '$name' (known: sandbox, daemon, proxy, dind)" ;;
    esac
    if [ "$name" = daemon ]; then
        source_hash=$(cd "$repo_root" && cat Dockerfile pyproject.toml $(find daemon cli -type f -name '*.py' -o -type f -path '*/web/*' | sort) 2>/dev/null | sha256sum | cut -c1-16)
    else
        source_hash=$(cd "$context" && find . -type f | sort | xargs cat | sha256sum | cut -c1-16)
    fi
    current=$(docker image inspect --format '{{ index .Config.Labels "kilod.source-hash" }}' "$tag" 2>/dev/null || true)
    if [ "$current" = "$source_hash" ] && [ -z "${KILOD_IMAGE_FORCE:-}" ]; then
        say "$tag is up to date"
        return
    fi
    ensure_base
    say "building $tag"
    local file_args=()
    if [ "$name" = daemon ]; then
        file_args=(-f "$repo_root/Dockerfile")
        # where egress goes through a TLS-inspecting proxy, pip in the build must trust its CA too
        local ca
        ca=$(cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true)
        [ -n "$ca" ] && file_args+=(--build-arg "EXTRA_CA_CERTS=$ca")
    fi
    docker build -q "${file_args[@]+"${file_args[@]}"}" --label "kilod.source-hash=$source_hash" --label kilod.image="$name" \
        -t "$tag" "$context" >/dev/null
    say "built $tag"
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(sandbox)
for t in "${targets[@]}"; do build_one "$t"; done
