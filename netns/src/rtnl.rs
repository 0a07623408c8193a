//! The netlink queries and changes a worker makes, over its own rtnetlink
//! connection (opened inside the namespace, so bound to it).
//!
//! Each method names its operation so an error reads like
//! `netns "/run/netns/x": add ingress qdisc on eth0 failed: ...`.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_REQUEST};
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkInfo, LinkMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute};
use netlink_packet_route::tc::{
    TcAction, TcActionAttribute, TcAttribute, TcFilterU32Option, TcHandle, TcMessage, TcOption,
};
use netlink_packet_route::RouteNetlinkMessage;
use nix::errno::Errno;
use rtnetlink::{Handle, LinkUnspec, RouteMessageBuilder};

use crate::error::{NetnsError, Result};

/// The ingress qdisc's parent and handle; deleting it needs both or the
/// kernel answers ENOENT.
const INGRESS_PARENT: u32 = 0xffff_fff1;
const INGRESS_HANDLE: u32 = 0xffff_0000;
/// The ingress hook of an `ingress` or a `clsact` qdisc.
const INGRESS_HOOK: u32 = 0xffff_fff2;
/// ETH_P_ALL in network byte order, as tc's `protocol all` sends it.
const PROTOCOL_ALL: u16 = (libc::ETH_P_ALL as u16).to_be();
/// How often `qdisc add` is retried when a busy node answers EBUSY.
const QDISC_BUSY_RETRIES: u32 = 5;

/// A network interface as attach needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mac: Option<[u8; 6]>,
    pub mtu: u32,
    /// The rtnetlink kind (`veth`, `tun`, `dummy`, ...); None for plain devices.
    pub kind: Option<String>,
}

/// One filter on an ingress hook, as far as we care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressFilter {
    pub priority: u16,
    pub kind: String,
    /// The ifindex a mirred action redirects to, if the filter has one.
    pub redirects_to: Option<u32>,
}

impl std::fmt::Display for IngressFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} pref {}", self.kind, self.priority)?;
        if let Some(to) = self.redirects_to {
            write!(f, " mirred redirect to ifindex {to}")?;
        }
        Ok(())
    }
}

/// A worker's handle on the netlink of its namespace.
pub struct Rtnl {
    handle: Handle,
    netns_path: PathBuf,
}

impl Rtnl {
    pub fn new(handle: Handle, netns_path: &Path) -> Self {
        Self {
            handle,
            netns_path: netns_path.to_path_buf(),
        }
    }

    pub fn netns_path(&self) -> &Path {
        &self.netns_path
    }

    fn fail(&self, op: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetnsError + '_ {
        let op = op.into();
        move |source| NetnsError::Netlink {
            path: self.netns_path.clone(),
            op,
            source,
        }
    }

    pub async fn links(&self) -> Result<Vec<Link>> {
        let messages: Vec<LinkMessage> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(self.fail("list links"))?;
        Ok(messages.iter().map(link_from_message).collect())
    }

    /// The link called `name`, or None when the namespace has no such device.
    pub async fn link_by_name(&self, name: &str) -> Result<Option<Link>> {
        let found = self
            .handle
            .link()
            .get()
            .match_name(name)
            .execute()
            .try_next()
            .await;
        match found {
            Ok(message) => Ok(message.as_ref().map(link_from_message)),
            Err(e) if NetnsError::netlink_errno(&e) == Some(Errno::ENODEV) => Ok(None),
            Err(e) => Err(self.fail(format!("look up link {name}"))(e)),
        }
    }

    /// The first IPv4 address of a link, with its prefix length.
    pub async fn ipv4_of(&self, link: &Link) -> Result<Option<(Ipv4Addr, u8)>> {
        let addresses: Vec<_> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(link.index)
            .execute()
            .try_collect()
            .await
            .map_err(self.fail(format!("list addresses of {}", link.name)))?;
        Ok(addresses.iter().find_map(|a| {
            a.attributes.iter().find_map(|attr| match attr {
                AddressAttribute::Address(IpAddr::V4(ip)) => Some((*ip, a.header.prefix_len)),
                _ => None,
            })
        }))
    }

    /// Whether any link of the namespace carries `ip`.
    pub async fn has_ipv4(&self, ip: Ipv4Addr) -> Result<bool> {
        let addresses: Vec<_> = self
            .handle
            .address()
            .get()
            .set_address_filter(IpAddr::V4(ip))
            .execute()
            .try_collect()
            .await
            .map_err(self.fail("list addresses"))?;
        Ok(!addresses.is_empty())
    }

    pub async fn add_ipv4(&self, link: &Link, ip: Ipv4Addr, prefix_len: u8) -> Result<()> {
        self.handle
            .address()
            .add(link.index, IpAddr::V4(ip), prefix_len)
            .execute()
            .await
            .map_err(self.fail(format!("add {ip}/{prefix_len} to {}", link.name)))
    }

    /// The IPv4 default route's gateway, if the namespace has one.
    pub async fn default_gateway(&self) -> Result<Option<Ipv4Addr>> {
        let routes: Vec<_> = self
            .handle
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute()
            .try_collect()
            .await
            .map_err(self.fail("list IPv4 routes"))?;
        Ok(routes
            .iter()
            .filter(|r| r.header.destination_prefix_length == 0)
            .find_map(|r| {
                r.attributes.iter().find_map(|attr| match attr {
                    RouteAttribute::Gateway(RouteAddress::Inet(gw)) => Some(*gw),
                    _ => None,
                })
            }))
    }

    pub async fn set_mtu_and_up(&self, link: &Link, mtu: u32) -> Result<()> {
        let message = LinkUnspec::new_with_index(link.index).mtu(mtu).up().build();
        self.handle
            .link()
            .set(message)
            .execute()
            .await
            .map_err(self.fail(format!("set mtu {mtu} and up on {}", link.name)))
    }

    /// Deletes a link; Ok(false) when it was already gone.
    pub async fn delete_link(&self, link: &Link) -> Result<bool> {
        let deleted = self.handle.link().del(link.index).execute().await;
        absent_is_fine(deleted).map_err(self.fail(format!("delete link {}", link.name)))
    }

    /// The kind of the qdisc on the ingress side of a link (`ingress` or
    /// `clsact`), if there is one.
    pub async fn ingress_qdisc_kind(&self, link: &Link) -> Result<Option<String>> {
        let qdiscs: Vec<TcMessage> = self
            .handle
            .qdisc()
            .get()
            .index(link.index as i32)
            .execute()
            .try_collect()
            .await
            .map_err(self.fail(format!("list qdiscs of {}", link.name)))?;
        Ok(qdiscs
            .iter()
            .filter(|q| q.header.index == link.index as i32)
            .filter(|q| u32::from(q.header.parent) == INGRESS_PARENT)
            .find_map(tc_kind))
    }

    pub async fn add_ingress_qdisc(&self, link: &Link) -> Result<()> {
        let mut attempt = 0;
        loop {
            let added = self
                .handle
                .qdisc()
                .add(link.index as i32)
                .ingress()
                .execute()
                .await;
            match added {
                Err(e)
                    if NetnsError::netlink_errno(&e) == Some(Errno::EBUSY)
                        && attempt < QDISC_BUSY_RETRIES =>
                {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
                }
                other => {
                    return other.map_err(self.fail(format!("add ingress qdisc on {}", link.name)));
                }
            }
        }
    }

    /// Deletes the ingress qdisc of a link; Ok(false) when it was already gone.
    pub async fn delete_ingress_qdisc(&self, link: &Link) -> Result<bool> {
        let mut request = self.handle.qdisc().del(link.index as i32);
        request.message_mut().header.parent = TcHandle::from(INGRESS_PARENT);
        request.message_mut().header.handle = TcHandle::from(INGRESS_HANDLE);
        absent_is_fine(request.execute().await)
            .map_err(self.fail(format!("delete ingress qdisc of {}", link.name)))
    }

    pub async fn ingress_filters(&self, link: &Link) -> Result<Vec<IngressFilter>> {
        let listed: std::result::Result<Vec<TcMessage>, _> = self
            .handle
            .traffic_filter(link.index as i32)
            .get()
            .ingress()
            .execute()
            .try_collect()
            .await;
        // Without an ingress qdisc there is no hook to list: no filters.
        let messages = match listed {
            Err(e) if is_absent(&e) => Vec::new(),
            other => other.map_err(self.fail(format!("list ingress filters of {}", link.name)))?,
        };
        Ok(messages
            .iter()
            .filter_map(|m| {
                Some(IngressFilter {
                    priority: (m.header.info >> 16) as u16,
                    kind: tc_kind(m)?,
                    redirects_to: mirred_target(m),
                })
            })
            .collect())
    }

    /// `tc filter add dev FROM ingress pref PRIO protocol all u32 match u8 0 0
    /// action mirred egress redirect dev TO`.
    pub async fn add_redirect_filter(&self, from: &Link, to: &Link, priority: u16) -> Result<()> {
        let op = || format!("add redirect filter {} -> {}", from.name, to.name);
        let request = self
            .handle
            .traffic_filter(from.index as i32)
            .add()
            .parent(INGRESS_HOOK)
            .priority(priority)
            .protocol(PROTOCOL_ALL)
            .redirect(to.index)
            .map_err(self.fail(op()))?;
        request.execute().await.map_err(self.fail(op()))
    }

    /// Deletes every ingress filter of `priority` on a link; Ok(false) when
    /// there was none.
    pub async fn delete_ingress_filters(&self, link: &Link, priority: u16) -> Result<bool> {
        // rtnetlink's delete request cannot set the priority, so the message
        // is built here: priority in the upper half of tcm_info, protocol 0
        // (any) in the lower half.
        let mut message = TcMessage::with_index(link.index as i32);
        message.header.parent = TcHandle::from(INGRESS_HOOK);
        message.header.info = u32::from(priority) << 16;
        let deleted = self
            .send_with_ack(RouteNetlinkMessage::DelTrafficFilter(message))
            .await;
        absent_is_fine(deleted).map_err(self.fail(format!(
            "delete ingress filters pref {priority} of {}",
            link.name
        )))
    }
}

impl Rtnl {
    async fn send_with_ack(
        &self,
        message: RouteNetlinkMessage,
    ) -> std::result::Result<(), rtnetlink::Error> {
        let mut request = NetlinkMessage::from(message);
        request.header.flags = NLM_F_REQUEST | NLM_F_ACK;
        let mut response = self.handle.clone().request(request)?;
        while let Some(answer) = response.next().await {
            if let NetlinkPayload::Error(err) = answer.payload {
                if err.code.is_some() {
                    return Err(rtnetlink::Error::NetlinkError(err));
                }
            }
        }
        Ok(())
    }
}

fn link_from_message(message: &LinkMessage) -> Link {
    let mut link = Link {
        index: message.header.index,
        name: String::new(),
        mac: None,
        mtu: 0,
        kind: None,
    };
    for attr in &message.attributes {
        match attr {
            LinkAttribute::IfName(name) => link.name = name.clone(),
            LinkAttribute::Mtu(mtu) => link.mtu = *mtu,
            LinkAttribute::Address(bytes) => link.mac = bytes.as_slice().try_into().ok(),
            LinkAttribute::LinkInfo(infos) => {
                link.kind = infos.iter().find_map(|info| match info {
                    LinkInfo::Kind(InfoKind::Other(k)) => Some(k.clone()),
                    LinkInfo::Kind(k) => Some(k.to_string()),
                    _ => None,
                })
            }
            _ => {}
        }
    }
    link
}

fn tc_kind(message: &TcMessage) -> Option<String> {
    message.attributes.iter().find_map(|attr| match attr {
        TcAttribute::Kind(kind) => Some(kind.clone()),
        _ => None,
    })
}

/// The destination ifindex of a u32 filter's mirred action.
fn mirred_target(message: &TcMessage) -> Option<u32> {
    use netlink_packet_route::tc::{TcActionMirrorOption, TcActionOption};
    let actions: Vec<&TcAction> = message
        .attributes
        .iter()
        .filter_map(|attr| match attr {
            TcAttribute::Options(options) => Some(options),
            _ => None,
        })
        .flatten()
        .filter_map(|option| match option {
            TcOption::U32(TcFilterU32Option::Action(actions)) => Some(actions),
            _ => None,
        })
        .flatten()
        .collect();
    actions.iter().find_map(|action| {
        action.attributes.iter().find_map(|attr| match attr {
            TcActionAttribute::Options(options) => options.iter().find_map(|o| match o {
                TcActionOption::Mirror(TcActionMirrorOption::Parms(parms)) => Some(parms.ifindex),
                _ => None,
            }),
            _ => None,
        })
    })
}

/// ENOENT, ENODEV and EINVAL are how the kernel says "no such object" for
/// links, qdiscs and filters.
fn is_absent(e: &rtnetlink::Error) -> bool {
    matches!(
        NetnsError::netlink_errno(e),
        Some(Errno::ENOENT | Errno::ENODEV | Errno::EINVAL)
    )
}

fn absent_is_fine(
    result: std::result::Result<(), rtnetlink::Error>,
) -> std::result::Result<bool, rtnetlink::Error> {
    match result {
        Ok(()) => Ok(true),
        Err(e) if is_absent(&e) => Ok(false),
        Err(e) => Err(e),
    }
}
