//! Test harness: private containerd, guest builders, namespace fixtures.
