//! What a container asks of its sandbox's network, and what it gets back.

use std::net::Ipv4Addr;

use tokio::sync::oneshot;

use crate::record::NetRecord;

/// The interface a CNI gives a pod; its traffic becomes the guest's.
pub const UPLINK: &str = "eth0";

/// Persists a record before anything in it exists (invariant 3). It runs on
/// the worker thread; an error aborts the attach with nothing created.
pub type PersistRecord = Box<dyn FnOnce(&NetRecord) -> std::io::Result<()> + Send>;

/// Where an attach sends the guest's side as soon as it is decided, before the record is
/// persisted and the tap made (see `NetnsPool::attach_announcing`).
pub(crate) type Announce = Option<oneshot::Sender<GuestAttachment>>;

/// What a container asks of its sandbox's network.
pub struct AttachRequest {
    pub container_id: String,
    /// Owner of the tap, so the VMM can open it without privilege.
    pub owner_uid: u32,
    pub owner_gid: u32,
    pub persist: PersistRecord,
}

impl std::fmt::Debug for AttachRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachRequest")
            .field("container_id", &self.container_id)
            .field("owner_uid", &self.owner_uid)
            .field("owner_gid", &self.owner_gid)
            .finish_non_exhaustive()
    }
}

/// How the guest gets the pod's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetworkMode {
    /// urunc's dynamic mode: the guest takes over eth0's address; all of
    /// eth0's traffic is redirected to the tap and back (tc mirred).
    #[default]
    Redirect,
    /// urunc's static mode (Knative `user-container`): the guest is
    /// 172.16.1.2 behind the tap, masqueraded out of eth0.
    StaticNat,
}

/// The result of an attach.
// Made once per container and moved straight into its state: boxing the
// large variant would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachOutcome {
    /// The tap exists and is redirected; `guest` is what the VMM plan needs.
    Attached {
        record: NetRecord,
        guest: GuestAttachment,
    },
    /// The namespace has no eth0 (a plain `ctr run`): the guest runs offline.
    NoNetwork,
}

/// What the guest needs to take over the pod's address: the tap it is wired to and the
/// addressing it answers with. netns's own type; the shim turns it into the VMM plan's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestAttachment {
    /// The tap inside the sandbox netns, e.g. `tap0_urunc`.
    pub tap: String,
    /// The guest's MAC (eth0's), lowercase `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    pub ipv4: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Option<Ipv4Addr>,
    pub mtu: u32,
}
