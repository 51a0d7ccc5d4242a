#!/bin/sh
# What a Docker engine needs before it starts inside a privileged container; then runs "$@".
# The same steps as moby's hack/dind (the official dind image's), for Debian's dockerd.
set -eu

# AppArmor: dockerd loads its profile only where securityfs is mounted
if [ -d /sys/kernel/security ] && ! mountpoint -q /sys/kernel/security; then
    mount -t securityfs none /sys/kernel/security || echo "dind: could not mount securityfs" >&2
fi

# cgroup v2: a container starts in the root of its own cgroup namespace, where no process
# may stay once controllers are delegated to children; move everything into init/ first
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    mkdir -p /sys/fs/cgroup/init
    xargs -rn1 < /sys/fs/cgroup/cgroup.procs > /sys/fs/cgroup/init/cgroup.procs 2>/dev/null || :
    sed -e 's/ / +/g' -e 's/^/+/' < /sys/fs/cgroup/cgroup.controllers \
        > /sys/fs/cgroup/cgroup.subtree_control || echo "dind: could not delegate cgroup controllers" >&2
fi

# a stale pid file from a container restart keeps dockerd from starting
rm -f /var/run/docker.pid /run/docker/containerd/containerd.pid 2>/dev/null || :

exec "$@"
