//! The guest's network as the VMM plan sees it. The shim builds it from the netns
//! crate's `GuestAttachment` once the tap and the tc redirect exist (netns does
//! not depend on this crate); the plan hands it to the guest.

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

use crate::error::CoreError;

/// What the guest needs to take over the pod's address: the tap it is wired to
/// and eth0's addressing (the guest answers as eth0, with eth0's MAC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestNetwork {
    /// Host tap device name inside the sandbox netns, e.g. `tap0_urunc`.
    pub tap: String,
    /// Guest MAC, lowercase `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    pub ipv4: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Option<Ipv4Addr>,
    pub mtu: u32,
}

impl GuestNetwork {
    /// Dotted netmask (`255.255.255.0`) for kinds whose command line wants it.
    pub fn netmask(&self) -> Ipv4Addr {
        let bits = u32::from(self.prefix_len.min(32));
        let mask = if bits == 0 {
            0
        } else {
            u32::MAX << (32 - bits)
        };
        Ipv4Addr::from(mask)
    }

    /// Refuses anything that could not be spliced into a VMM argument safely:
    /// tap and MAC end up inside comma-separated qemu / cloud-hypervisor options.
    pub fn validate(&self) -> Result<(), CoreError> {
        validate_tap_name(&self.tap)?;
        validate_mac(&self.mac)?;
        if self.prefix_len > 32 {
            return Err(CoreError::OutOfRange {
                field: "network.prefix_len".into(),
                value: self.prefix_len.into(),
                reason: "an IPv4 prefix is 0..=32".into(),
            });
        }
        if !(68..=65535).contains(&self.mtu) {
            return Err(CoreError::OutOfRange {
                field: "network.mtu".into(),
                value: self.mtu.into(),
                reason: "an IPv4 link MTU is 68..=65535".into(),
            });
        }
        Ok(())
    }
}

/// Linux interface names: at most 15 bytes; we further restrict to characters
/// that are inert in every VMM's option syntax.
fn validate_tap_name(tap: &str) -> Result<(), CoreError> {
    let inert = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-';
    if tap.is_empty() || tap.len() > 15 || tap.starts_with('-') || !tap.chars().all(inert) {
        return Err(CoreError::invalid(
            "network.tap",
            tap,
            "expected 1 to 15 characters from [A-Za-z0-9_.-], not starting with '-'",
        ));
    }
    Ok(())
}

fn validate_mac(mac: &str) -> Result<(), CoreError> {
    let octets: Vec<&str> = mac.split(':').collect();
    let well_formed = octets.len() == 6
        && octets
            .iter()
            .all(|o| o.len() == 2 && o.chars().all(|c| c.is_ascii_hexdigit()));
    if !well_formed {
        return Err(CoreError::invalid(
            "network.mac",
            mac,
            "expected six colon-separated hex octets like aa:bb:cc:dd:ee:ff",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(prefix_len: u8) -> GuestNetwork {
        GuestNetwork {
            tap: "tap0_urunc".into(),
            mac: "02:42:ac:11:00:02".into(),
            ipv4: Ipv4Addr::new(10, 0, 0, 2),
            prefix_len,
            gateway: None,
            mtu: 1500,
        }
    }

    #[test]
    fn netmask_follows_prefix() {
        assert_eq!(net(24).netmask(), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(net(0).netmask(), Ipv4Addr::new(0, 0, 0, 0));
        assert_eq!(net(32).netmask(), Ipv4Addr::new(255, 255, 255, 255));
        assert_eq!(net(17).netmask(), Ipv4Addr::new(255, 255, 128, 0));
    }

    #[test]
    fn hostile_tap_and_mac_are_refused() {
        let mut n = net(24);
        n.tap = "tap0,script=/x".into();
        let err = n.validate().unwrap_err().to_string();
        assert!(
            err.contains("network.tap") && err.contains("tap0,script=/x"),
            "{err}"
        );
        let mut n = net(24);
        n.mac = "02:42:ac:11:00:02,x=y".into();
        let err = n.validate().unwrap_err().to_string();
        assert!(err.contains("network.mac") && err.contains("x=y"), "{err}");
        assert!(net(24).validate().is_ok());
    }
}
