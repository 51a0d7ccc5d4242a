#!/bin/sh
# kilod passes the configuration and the filter (one pattern a line) in the
# environment, so the container needs no host files and a recreated one is identical.
set -eu
: "${KILOD_PROXY_CONFIG:?kilod sets KILOD_PROXY_CONFIG}"
dir=$(mktemp -d /tmp/kilod-proxy.XXXXXX)
printf '%s\n' "$KILOD_PROXY_CONFIG" >"$dir/tinyproxy.conf"
printf '%s\n' "${KILOD_PROXY_FILTER:-}" >"$dir/filter"
sed -i "s|@FILTER@|$dir/filter|" "$dir/tinyproxy.conf"
exec tinyproxy -d -c "$dir/tinyproxy.conf"
