#!/bin/sh
# A unikernel pod driven by hand with crictl, step by step, the way a
# node is debugged. Needs: crictl aimed at the node's containerd
# (/etc/crictl.yaml, or CONTAINER_RUNTIME_ENDPOINT=unix:///run/containerd/containerd.sock),
# the `urunc` runtime handler in containerd's CRI config (../containerd-*.toml),
# and the image of container.json on the node
# (ctr --namespace k8s.io images import hello-linux.tar).
set -eu
cd "$(dirname "$0")"

# The pod's log_directory (pod.json): CRI writes container logs below it.
mkdir -p /tmp/urunc-crictl-example

# RunPodSandbox with the urunc handler (a RuntimeClass's `handler`).
pod=$(crictl runp --runtime urunc pod.json)
echo "pod: $pod"
# CreateContainer + StartContainer: the shim boots the guest.
container=$(crictl create "$pod" container.json pod.json)
echo "container: $container"
crictl start "$container"
crictl ps --all --id "$container"

# The guest's serial console is the container log (wait for its first lines).
waited=0
until [ "$(crictl logs "$container" 2>/dev/null | wc -l)" -ge 5 ] || [ "$waited" -ge 60 ]; do
    sleep 1
    waited=$((waited + 1))
done
crictl logs "$container"

# StopContainer (SIGTERM, then SIGKILL after the timeout) and RemoveContainer.
crictl stop --timeout 10 "$container"
crictl rm "$container"
# StopPodSandbox + RemovePodSandbox: the pod's network goes with it.
crictl stopp "$pod"
crictl rmp "$pod"
