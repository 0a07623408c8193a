//! Creating a persistent tap device with the TUN/TAP ioctls.
//!
//! rtnetlink cannot create a usable tap (the kernel refuses `tuntap` newlink
//! without a file behind it), so this is the one place we use ioctls on
//! `/dev/net/tun`. The device lands in the network namespace of the calling
//! thread: only a netns worker calls this.

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

use nix::errno::Errno;

/// `struct ifreq` as TUNSETIFF reads it: a name and the flags (a union
/// padded to 24 bytes in the kernel).
#[repr(C)]
struct TunIfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

nix::ioctl_write_ptr_bad!(tun_set_iff, libc::TUNSETIFF, TunIfReq);
nix::ioctl_write_int_bad!(tun_set_persist, libc::TUNSETPERSIST);
nix::ioctl_write_int_bad!(tun_set_owner, libc::TUNSETOWNER);
nix::ioctl_write_int_bad!(tun_set_group, libc::TUNSETGROUP);

/// A tap device to create: a name that is free in the namespace and who may
/// open it (the container's uid/gid, so the VMM needs no privilege for it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapDevice {
    pub name: String,
    pub owner_uid: u32,
    pub owner_gid: u32,
}

impl TapDevice {
    /// Creates the tap as persistent with a virtio-net header. `IFF_TUN_EXCL`
    /// makes an existing device of that name an error instead of silently
    /// reusing it. Returns the step that failed and its errno.
    pub fn create(&self) -> Result<(), (&'static str, Errno)> {
        if self.name.len() >= libc::IFNAMSIZ || self.name.contains('\0') {
            return Err(("validating the name", Errno::EINVAL));
        }
        let tun = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open("/dev/net/tun")
            .map_err(|e| {
                (
                    "opening /dev/net/tun",
                    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
                )
            })?;
        let mut req = TunIfReq {
            name: [0; libc::IFNAMSIZ],
            flags: (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR | libc::IFF_TUN_EXCL)
                as libc::c_short,
            _pad: [0; 22],
        };
        req.name[..self.name.len()].copy_from_slice(self.name.as_bytes());
        let fd = tun.as_raw_fd();
        // SAFETY: fd is an open /dev/net/tun and req outlives each call; the
        // int ioctls take their argument by value.
        unsafe {
            tun_set_iff(fd, &req).map_err(|e| ("TUNSETIFF", e))?;
            tun_set_owner(fd, self.owner_uid as libc::c_int).map_err(|e| ("TUNSETOWNER", e))?;
            tun_set_group(fd, self.owner_gid as libc::c_int).map_err(|e| ("TUNSETGROUP", e))?;
            tun_set_persist(fd, 1).map_err(|e| ("TUNSETPERSIST", e))?;
        }
        // Closing the fd keeps the persistent device; the VMM opens it by name.
        Ok(())
    }
}

/// The tap name for index `n`. Guests see the same name urunc uses.
pub fn tap_name(n: u32) -> String {
    format!("tap{n}_urunc")
}

/// `aa:bb:cc:dd:ee:ff`, as guests and VMM arguments spell a MAC.
pub fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Whether `name` is one of our taps (`tap<digits>_urunc`).
pub fn is_urunc_tap_name(name: &str) -> bool {
    name.strip_prefix("tap")
        .and_then(|r| r.strip_suffix("_urunc"))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The first `tap<N>_urunc` not among `taken` names.
pub fn first_free_tap_name<'a>(taken: impl IntoIterator<Item = &'a str> + Clone) -> String {
    (0u32..)
        .map(tap_name)
        .find(|candidate| !taken.clone().into_iter().any(|t| t == candidate))
        .expect("some u32 index is free")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tap_names_follow_urunc() {
        assert_eq!(tap_name(0), "tap0_urunc");
        assert!(is_urunc_tap_name("tap12_urunc"));
        assert!(!is_urunc_tap_name("tap_urunc"));
        assert!(!is_urunc_tap_name("tapx_urunc"));
        assert!(!is_urunc_tap_name("tap0_urunc2"));
    }

    #[test]
    fn first_free_skips_taken_names() {
        assert_eq!(first_free_tap_name(["eth0", "lo"]), "tap0_urunc");
        assert_eq!(
            first_free_tap_name(["tap0_urunc", "tap2_urunc"]),
            "tap1_urunc"
        );
    }
}
