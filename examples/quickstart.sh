#!/usr/bin/env bash
# urunc-rs quickstart: on a fresh Debian 12 machine (as root), run a Linux
# unikernel as a container through containerd and urunc-rs, reach it over the
# container's network, stop it and show that nothing is left behind.
#
#   sudo examples/quickstart.sh [--containerd 2|1.6]
#
# What it does:
#   1. installs what it needs with .ci/install-deps, the project's one install
#      script (Debian's packages, containerd 2.x built from the Go module
#      proxy); skip with URUNC_QUICKSTART_SKIP_APT=1 when already done,
#   2. builds what it runs (containerd-shim-urunc-v2, urunc-pack, build-linux-guest),
#   3. starts a private containerd (everything in a temporary folder; the
#      system containerd, if any, is not touched): the containerd 2.x build by
#      default when it is there, Debian's 1.6 with `--containerd 1.6`,
#   4. builds a Linux guest (Debian's cloud kernel + a busybox initramfs that
#      answers HTTP on port 8080) and packs it into an image with urunc-pack,
#   5. makes a pod-like network namespace (veth: eth0 inside, the peer in the
#      host namespace), runs the image in it with
#      `ctr run --runtime io.containerd.urunc.v2 --with-ns network:...`,
#   6. waits for the guest to answer at eth0's address, prints the answer,
#   7. kills and deletes the task and checks that no tap, no tc filter, no
#      ingress qdisc and no VMM is left,
#   8. stops containerd and removes everything (also on failure, by trap).
#
# URUNC_RS_ACCEL (default tcg) is passed to the shim: kvm where /dev/kvm is
# usable and fast, tcg (software emulation) anywhere.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SUFFIX="$$"
NETNS="urunc-qs-$SUFFIX"
PEER_IF="urqs${SUFFIX}p"
PEER_IP="10.201.77.1"
GUEST_IP="10.201.77.2"
PREFIX_LEN=24
CTR_NAMESPACE="urunc-quickstart-$SUFFIX"
IMAGE="docker.io/library/urunc-linux-hello:latest"
CONTAINER="urunc-hello-$SUFFIX"
ANSWER_TIMEOUT="${URUNC_QUICKSTART_TIMEOUT:-180}"
export URUNC_RS_ACCEL="${URUNC_RS_ACCEL:-tcg}"
PEERS_DIR="${URUNC_PEERS_DIR:-/opt/urunc-rs-peers}"
CONTAINERD_2_VERSION="$(awk -F'\t' '$1 == "containerd" { print $3 }' "$REPO/.ci/go-peers.tsv")"
CONTAINERD_2_BIN="$PEERS_DIR/containerd-$CONTAINERD_2_VERSION/bin"
CONTAINERD_CHOICE="${URUNC_QUICKSTART_CONTAINERD:-}"
while [ $# -gt 0 ]; do
    case "$1" in
        --containerd) CONTAINERD_CHOICE="${2:-}"; shift 2 ;;
        --containerd=*) CONTAINERD_CHOICE="${1#*=}"; shift ;;
        *) printf 'quickstart: unknown option %s (expected --containerd 2|1.6)\n' "$1" >&2; exit 2 ;;
    esac
done

WORK=""
CONTAINERD_PID=""

step() { printf '\n==> %s\n' "$*"; }
die() { printf 'quickstart: %s\n' "$*" >&2; exit 1; }

# A process's command line, empty when it is gone.
cmdline_of() {
    cat "/proc/$1/cmdline" 2>/dev/null | tr '\0' ' '
}

CTR=ctr
ctr_private() {
    "$CTR" --address "$WORK/containerd.sock" --namespace "$CTR_NAMESPACE" "$@"
}

# Everything below is idempotent: it runs on success and on failure.
cleanup() {
    local status=$?
    set +e
    if [ -n "$CONTAINERD_PID" ] && kill -0 "$CONTAINERD_PID" 2>/dev/null; then
        for task in $(ctr_private tasks ls -q 2>/dev/null); do
            timeout 30 "$CTR" --address "$WORK/containerd.sock" --namespace "$CTR_NAMESPACE" \
                tasks delete --force "$task" >/dev/null 2>&1 \
                || echo "cleanup: could not delete task $task" >&2
        done
        for container in $(ctr_private containers ls -q 2>/dev/null); do
            ctr_private containers rm "$container" >/dev/null 2>&1 \
                || echo "cleanup: could not remove container $container" >&2
        done
        kill "$CONTAINERD_PID"
        for _ in $(seq 100); do kill -0 "$CONTAINERD_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$CONTAINERD_PID" 2>/dev/null
        wait "$CONTAINERD_PID" 2>/dev/null
    fi
    if [ -n "$WORK" ]; then
        # Shims and VMMs that outlived containerd still refer to $WORK.
        for proc in /proc/[0-9]*; do
            local pid="${proc#/proc/}"
            [ "$pid" = "$$" ] && continue
            if cmdline_of "$pid" | grep -qF "$WORK" \
                || readlink "$proc/cwd" 2>/dev/null | grep -qF "$WORK"; then
                echo "cleanup: killing leftover $pid: $(cmdline_of "$pid")" >&2
                kill -9 "$pid" 2>/dev/null
            fi
        done
        awk -v dir="$WORK" 'index($5, dir) == 1 { print length($5), $5 }' /proc/self/mountinfo \
            | sort -rn | cut -d' ' -f2- | while read -r mount_point; do
                umount -l "$mount_point" || echo "cleanup: could not unmount $mount_point" >&2
            done
        rm -rf "$WORK"
    fi
    rm -rf "/run/containerd/runc/$CTR_NAMESPACE"
    ip link del "$PEER_IF" 2>/dev/null
    ip netns del "$NETNS" 2>/dev/null
    if [ "$status" -ne 0 ]; then
        echo "quickstart FAILED (exit $status); everything it created was removed" >&2
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" -eq 0 ] || die "run as root (containerd, network namespaces and taps need it)"

step "1/8 installing what it needs (.ci/install-deps)"
if [ "${URUNC_QUICKSTART_SKIP_APT:-0}" = 1 ]; then
    echo "skipped (URUNC_QUICKSTART_SKIP_APT=1)"
else
    bash "$REPO/.ci/install-deps"
fi
# shellcheck disable=SC1091
command -v cargo >/dev/null || { [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"; }
command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs) first"
case "$CONTAINERD_CHOICE" in
    "") if [ -x "$CONTAINERD_2_BIN/containerd" ]; then CONTAINERD_CHOICE=2; else CONTAINERD_CHOICE=1.6; fi ;;
    2|2.x|1.6) ;;
    *) die "--containerd $CONTAINERD_CHOICE: expected 2 (the $CONTAINERD_2_VERSION build) or 1.6 (Debian's)" ;;
esac
if [ "$CONTAINERD_CHOICE" = 1.6 ]; then
    CONTAINERD=containerd
    CONTAINERD_PATH="$PATH"
else
    [ -x "$CONTAINERD_2_BIN/containerd" ] \
        || die "containerd $CONTAINERD_2_VERSION is not in $CONTAINERD_2_BIN: run .ci/install-deps"
    CONTAINERD="$CONTAINERD_2_BIN/containerd"
    CTR="$CONTAINERD_2_BIN/ctr"
    CONTAINERD_PATH="$CONTAINERD_2_BIN:$PATH"
fi
echo "containerd: $("$CONTAINERD" --version)"

step "2/8 building the shim, urunc-pack and the guest builder"
(cd "$REPO" && cargo build --bin containerd-shim-urunc-v2 --bin urunc-pack --bin build-linux-guest)
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$REPO/$TARGET_DIR" ;; esac
BIN_DIR="$TARGET_DIR/debug"
for binary in containerd-shim-urunc-v2 urunc-pack build-linux-guest; do
    [ -x "$BIN_DIR/$binary" ] || die "$BIN_DIR/$binary was not built"
done

step "3/8 starting a private containerd"
WORK="$(mktemp -d /tmp/urunc-quickstart.XXXXXX)"
sed "s|@DIR@|$WORK|g" "$REPO/examples/containerd/private-containerd.toml" >"$WORK/config.toml"
if [ "$CONTAINERD_CHOICE" != 1.6 ]; then
    # The same file in containerd 2.x's config version, where CRI is three plugins.
    sed -i -e 's/^version = 2$/version = 3/' \
        -e 's/^disabled_plugins = .*/disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime", "io.containerd.cri.v1.images"]/' \
        "$WORK/config.toml"
fi
mkdir -p "$WORK/root" "$WORK/state" "$WORK/opt"
PATH="$BIN_DIR:$CONTAINERD_PATH" "$CONTAINERD" --config "$WORK/config.toml" >"$WORK/containerd.log" 2>&1 &
CONTAINERD_PID=$!
for _ in $(seq 100); do
    ctr_private version >/dev/null 2>&1 && break
    kill -0 "$CONTAINERD_PID" 2>/dev/null || { tail -20 "$WORK/containerd.log" >&2; die "containerd exited"; }
    sleep 0.2
done
ctr_private version >/dev/null || die "containerd does not answer; log: $WORK/containerd.log"
echo "containerd $CONTAINERD_PID on $WORK/containerd.sock, namespace $CTR_NAMESPACE"

step "4/8 building the Linux guest and its image"
"$BIN_DIR/build-linux-guest" "$WORK/guest" >"$WORK/guest.env"
cat "$WORK/guest.env"
# shellcheck disable=SC1091
. "$WORK/guest.env"
"$BIN_DIR/urunc-pack" --name "$IMAGE" \
    --file "/unikernel/kernel=$KERNEL" --file "/unikernel/initrd=$INITRD" \
    --annotation unikernelType=linux --annotation hypervisor=qemu \
    --annotation binary=/unikernel/kernel --annotation initrd=/unikernel/initrd \
    --cmd /init --out "$WORK/image.tar"
ctr_private images import "$WORK/image.tar"

step "5/8 creating the pod-like network namespace and running the unikernel"
ip netns add "$NETNS"
ip -n "$NETNS" link set lo up
ip link add "$PEER_IF" type veth peer name "urqs${SUFFIX}e"
ip link set "urqs${SUFFIX}e" netns "$NETNS"
ip -n "$NETNS" link set "urqs${SUFFIX}e" name eth0
ip -n "$NETNS" addr add "$GUEST_IP/$PREFIX_LEN" dev eth0
ip -n "$NETNS" link set eth0 up
ip -n "$NETNS" route add default via "$PEER_IP"
ip addr add "$PEER_IP/$PREFIX_LEN" dev "$PEER_IF"
ip link set "$PEER_IF" up
echo "netns $NETNS: eth0 $GUEST_IP/$PREFIX_LEN, peer $PEER_IF $PEER_IP in the host namespace"
ctr_private run -d --runtime io.containerd.urunc.v2 \
    --with-ns "network:/run/netns/$NETNS" "$IMAGE" "$CONTAINER"
ctr_private tasks ls

step "6/8 waiting for the guest to answer at http://$GUEST_IP:$HTTP_PORT/"
started=$(date +%s)
answer=""
while [ $(( $(date +%s) - started )) -lt "$ANSWER_TIMEOUT" ]; do
    if answer="$(curl -sS --max-time 3 "http://$GUEST_IP:$HTTP_PORT/" 2>/dev/null)"; then
        break
    fi
    answer=""
    ctr_private tasks ls -q | grep -qx "$CONTAINER" || break
    sleep 1
done
if [ "$answer" != "$HTTP_ANSWER" ]; then
    ctr_private tasks ls >&2 || true
    tail -40 "$WORK/containerd.log" >&2
    die "the guest did not answer within ${ANSWER_TIMEOUT}s (got '$answer')"
fi
echo "guest answered after $(( $(date +%s) - started ))s: $answer"
echo "the sandbox namespace while it runs (tap and redirect made by the shim):"
ip -n "$NETNS" -br link
tc -n "$NETNS" filter show dev eth0 ingress

step "7/8 stopping it and checking nothing is left"
ctr_private tasks kill -s SIGKILL "$CONTAINER"
for _ in $(seq 100); do
    ctr_private tasks ls 2>/dev/null | grep -q "^$CONTAINER .*STOPPED" && break
    sleep 0.1
done
ctr_private tasks delete "$CONTAINER"
ctr_private containers rm "$CONTAINER"
echo "--- ip -n $NETNS link"
ip -n "$NETNS" -br link
echo "--- tc -n $NETNS qdisc show dev eth0"
tc -n "$NETNS" qdisc show dev eth0
echo "--- tc -n $NETNS filter show dev eth0 ingress"
tc -n "$NETNS" filter show dev eth0 ingress
leftovers=""
ip -n "$NETNS" -o link | grep -qE 'tap[0-9]+_urunc' && leftovers+=" tap"
[ -n "$(tc -n "$NETNS" filter show dev eth0 ingress)" ] && leftovers+=" tc-filters"
tc -n "$NETNS" qdisc show dev eth0 | grep -q 'ingress' && leftovers+=" ingress-qdisc"
for proc in /proc/[0-9]*; do
    cmdline_of "${proc#/proc/}" | grep -q "^qemu-system.*$WORK" && leftovers+=" vmm(${proc#/proc/})"
done
[ -z "$leftovers" ] || die "left behind:$leftovers"
echo "nothing left: no tap, no tc filter, no ingress qdisc, no VMM"

step "8/8 stopping containerd and removing the namespace"
# The EXIT trap does it (the same code runs when anything above fails).
echo "done"
