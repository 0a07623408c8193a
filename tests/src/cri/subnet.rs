//! A private /24 for one CNI network, claimed so that tests running at the
//! same time (threads of one test binary, or other test binaries) never put
//! two bridges on the same subnet.
//!
//! A claim is a file created exclusively under [`CLAIM_DIR`], holding the
//! claimer's pid; a claim whose pid is gone (a crashed test) is taken over.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::command;
use crate::error::{HarnessError, Result};
use crate::host_processes::is_alive;

/// Where claims live (tmpfs: a reboot frees them all).
pub const CLAIM_DIR: &str = "/run/urunc-rs-tests/cri-subnets";
/// Subnets are `10.88.<third>.0/24` with `third` in this range.
const THIRD_OCTETS: std::ops::RangeInclusive<u8> = 100..=199;

/// A claimed `10.88.<third>.0/24`; released on drop.
#[derive(Debug)]
pub struct SubnetClaim {
    third: u8,
    claim_file: PathBuf,
}

impl SubnetClaim {
    /// Claims a subnet that no other claim holds and no host interface
    /// already has an address in, starting from a pid-dependent octet so
    /// concurrent processes rarely contend.
    pub fn claim() -> Result<Self> {
        let claim_dir = Path::new(CLAIM_DIR);
        std::fs::create_dir_all(claim_dir).map_err(HarnessError::io("create", claim_dir))?;
        let host_addresses =
            command::checked(std::process::Command::new("ip").args(["-4", "-o", "addr", "show"]))?;
        let span = THIRD_OCTETS.end() - THIRD_OCTETS.start() + 1;
        let start = (std::process::id() % u32::from(span)) as u8;
        for step in 0..span {
            let third = THIRD_OCTETS.start() + (start + step) % span;
            if host_addresses.contains(&format!("inet 10.88.{third}.")) {
                continue;
            }
            if let Some(claim) = Self::try_claim(claim_dir, third)? {
                return Ok(claim);
            }
        }
        Err(HarnessError::Missing {
            what: format!("a free 10.88.X.0/24 with X in {THIRD_OCTETS:?}"),
            hint: format!("remove stale claims in {CLAIM_DIR}"),
        })
    }

    fn try_claim(claim_dir: &Path, third: u8) -> Result<Option<Self>> {
        let claim_file = claim_dir.join(format!("10.88.{third}.0"));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&claim_file)
        {
            Ok(mut file) => {
                write!(file, "{}", std::process::id())
                    .map_err(HarnessError::io("write", &claim_file))?;
                Ok(Some(SubnetClaim { third, claim_file }))
            }
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                let holder = std::fs::read_to_string(&claim_file).unwrap_or_default();
                let holder_alive = holder.trim().parse::<i32>().is_ok_and(is_alive);
                // An empty file is a claim being written right now: leave it alone.
                if holder_alive || holder.trim().is_empty() {
                    return Ok(None);
                }
                std::fs::remove_file(&claim_file)
                    .map_err(HarnessError::io("remove stale claim", &claim_file))?;
                Self::try_claim(claim_dir, third)
            }
            Err(error) => Err(HarnessError::io("create", claim_file)(error)),
        }
    }

    /// `10.88.<third>.0/24`.
    pub fn cidr(&self) -> String {
        format!("10.88.{}.0/24", self.third)
    }

    /// The bridge's (gateway's) address, `10.88.<third>.1`.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 88, self.third, 1)
    }

    /// The third octet, to derive other unique names from.
    pub fn third_octet(&self) -> u8 {
        self.third
    }

    /// Releases the claim now, reporting a failure.
    pub fn release(mut self) -> Result<()> {
        self.remove_claim()
    }

    fn remove_claim(&mut self) -> Result<()> {
        match std::fs::remove_file(&self.claim_file) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                Err(HarnessError::io("remove", self.claim_file.clone())(error))
            }
            _ => Ok(()),
        }
    }
}

impl Drop for SubnetClaim {
    fn drop(&mut self) {
        if let Err(error) = self.remove_claim() {
            eprintln!("SubnetClaim({}): {error}", self.cidr());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_claims_get_distinct_subnets_and_release_them() {
        if !nix::unistd::Uid::effective().is_root() {
            crate::skipped!("SKIPPED: claims live in {CLAIM_DIR}, which needs root");
            return;
        }
        let first = SubnetClaim::claim().unwrap();
        let second = SubnetClaim::claim().unwrap();
        assert_ne!(first.cidr(), second.cidr());
        assert_eq!(first.gateway().octets()[2], first.third_octet());
        let file = first.claim_file.clone();
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            std::process::id().to_string()
        );
        first.release().unwrap();
        assert!(!file.exists());
    }
}
