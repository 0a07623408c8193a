#!/usr/bin/env python3
"""Writes shim/link-order.txt: the functions a shim runs over whole container lifecycles,
which shim/build.rs has lld place first (see there for why).

    cargo build --release -p urunc-tests --example shim_bench
    sudo python3 tests/examples/link_order.py

Needs root, tracefs (uprobes) and what shim_bench needs (containerd, qemu, ...). It builds the
static release shim with a link map, puts a uprobe on the entry of every function of the
binary (a kernel breakpoint that counts, in every process that runs the file), runs shim_bench
through that binary, and keeps the functions that were hit, in the default layout's order
(callers stay near their callees). Removing 8000 probes takes the kernel several minutes.
Run it again after changes to the shim or its dependencies: names it no longer finds are
skipped, so a stale list costs memory, not correctness.
"""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET = "x86_64-unknown-linux-gnu"
BINARY = os.path.join(ROOT, "target", TARGET, "release", "containerd-shim-urunc-v2")
MAP = os.path.join(ROOT, "target", TARGET, "release", "containerd-shim-urunc-v2.map")
BENCH = os.path.join(ROOT, "target", "release", "examples", "shim_bench")
OUTPUT = os.path.join(ROOT, "shim", "link-order.txt")
TRACEFS = next((p for p in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
                if os.path.exists(os.path.join(p, "uprobe_events"))), None)
GROUP = "urunc_link_order"
# lld's map: `VMA LMA size align` then an output section, an input section (`file:(name)`) or
# a symbol.
LINE = re.compile(r"^\s*([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+\d+\s+(\S.*)$")


def build():
    env = dict(os.environ, RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static",
               URUNC_LINK_MAP=MAP)
    subprocess.run(["cargo", "build", "-q", "--release", "-p", "urunc-shim", "--target", TARGET],
                   cwd=ROOT, env=env, check=True)


def functions(map_file):
    """(entry address, ordering name) of every function in .text. A Rust function has its own
    section, `.text.<mangled name>` (`.text.unlikely.<name>` when LLVM deems it cold); a C object
    (glibc, libseccomp) has sections such as `.text` or `.text.avx2` holding several functions
    and is ordered by the first symbol in each (the map prints Rust symbols demangled, C ones
    as they are)."""
    found, output, c_section, c_name = [], None, False, None
    for line in open(map_file):
        match = LINE.match(line)
        if not match:
            continue
        address, size, rest = int(match[1], 16), int(match[2], 16), match[3]
        if rest.startswith("."):
            output = rest
            continue
        if output != ".text":
            continue
        section = re.search(r"^(.*):\((\S+)\)$", rest)
        if section:
            rust = ".rcgu.o" in section[1]
            c_section, c_name = not rust, None
            name = section[2]
            if rust and name.startswith(".text.") and size:
                name = name[len(".text."):]
                for prefix in ("unlikely.", "hot.", "startup.", "exit.", "split."):
                    name = name.removeprefix(prefix)
                found.append((address, name))
        elif c_section and size:
            c_name = c_name or rest
            found.append((address, c_name))
    return found


def executable_segment(binary):
    out = subprocess.run(["readelf", "-lW", binary], capture_output=True, text=True, check=True)
    for line in out.stdout.splitlines():
        fields = line.split()
        if fields and fields[0] == "LOAD" and "E" in fields[6:-1]:
            return int(fields[2], 16), int(fields[1], 16), int(fields[5], 16)
    sys.exit(f"no executable segment in {binary}")


def hits(binary, entries):
    """Runs shim_bench with a counting uprobe on every entry; the names that were hit."""
    vaddr, offset, size = executable_segment(binary)
    probes = {}
    for address, name in entries:
        if vaddr <= address < vaddr + size:
            probes.setdefault(address, (f"f{len(probes)}", name))
    events = os.path.join(TRACEFS, "uprobe_events")
    fd = os.open(events, os.O_WRONLY | os.O_APPEND)
    enable = os.path.join(TRACEFS, "events", GROUP, "enable")
    try:
        for address, (event, _) in probes.items():
            os.write(fd, f"p:{GROUP}/{event} {binary}:0x{address - vaddr + offset:x}\n".encode())
        with open(enable, "w") as f:
            f.write("1")
        subprocess.run([BENCH], env=dict(os.environ, URUNC_SHIM_BIN=binary), check=True,
                       stdout=subprocess.DEVNULL)
        counts = {}
        for line in open(os.path.join(TRACEFS, "uprobe_profile")):
            fields = line.split()
            if len(fields) == 3:
                counts[fields[1]] = int(fields[2])
    finally:
        if os.path.exists(enable):
            print("removing the probes (minutes)...", flush=True)
            with open(enable, "w") as f:
                f.write("0")
        for event, _ in probes.values():
            try:
                os.write(fd, f"-:{GROUP}/{event}\n".encode())
            except OSError:
                pass  # never registered: the loop above stopped early
        os.close(fd)
    return {name for event, name in probes.values() if counts.get(event, 0) > 0}


def main():
    if os.geteuid() != 0:
        sys.exit("needs root (private containerd, uprobes)")
    if TRACEFS is None:
        sys.exit("no tracefs with uprobe_events (mount -t tracefs nodev /sys/kernel/tracing)")
    if not os.path.exists(BENCH):
        sys.exit("build shim_bench first: cargo build --release -p urunc-tests --example shim_bench")
    build()
    entries = functions(MAP)
    hot = hits(BINARY, entries)
    ordered = dict.fromkeys(name for _, name in sorted(entries) if name in hot)
    with open(OUTPUT, "w") as f:
        f.write("\n".join(ordered) + "\n")
    print(f"wrote {OUTPUT}: {len(ordered)} of {len(set(n for _, n in entries))} functions")


if __name__ == "__main__":
    main()
