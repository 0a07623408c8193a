//! The type URL of every protobuf message the shim packs into an `Any` (events, metrics),
//! written out instead of asked of protobuf's reflection.
//!
//! `descriptor().full_name()` would answer it, but its first call builds the reflection of every
//! message in the files involved and in their imports (gogo.proto, descriptor.proto with its
//! comments): about half a MiB of heap held for the daemon's life, in a daemon that runs once per
//! pod. The tests check each name against that reflection.

use containerd_shim_protos::cgroups::metrics as v1;
use containerd_shim_protos::cgroups_v2::metrics as v2;
use containerd_shim_protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskOOM, TaskPaused,
    TaskResumed, TaskStart,
};
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::{self, Message};

/// A message with the name containerd decodes an `Any` by.
pub trait TypeUrl: Message {
    const TYPE_URL: &'static str;
}

/// `message` encoded into an `Any` under its type URL.
pub fn pack<M: TypeUrl>(message: &M) -> Result<Any, protobuf::Error> {
    Ok(Any {
        type_url: M::TYPE_URL.to_string(),
        value: message.write_to_bytes()?,
        ..Default::default()
    })
}

macro_rules! type_urls {
    ($($message:ty => $url:literal,)*) => {
        $(impl TypeUrl for $message {
            const TYPE_URL: &'static str = $url;
        })*

        #[cfg(test)]
        mod tests {
            use super::*;
            use containerd_shim_protos::protobuf::MessageFull;

            #[test]
            fn every_type_url_is_the_name_protobuf_reflection_gives() {
                $(assert_eq!(
                    <$message as TypeUrl>::TYPE_URL,
                    <$message as MessageFull>::descriptor().full_name(),
                );)*
            }
        }
    };
}

type_urls! {
    TaskCreate => "containerd.events.TaskCreate",
    TaskStart => "containerd.events.TaskStart",
    TaskExit => "containerd.events.TaskExit",
    TaskDelete => "containerd.events.TaskDelete",
    TaskExecAdded => "containerd.events.TaskExecAdded",
    TaskExecStarted => "containerd.events.TaskExecStarted",
    TaskPaused => "containerd.events.TaskPaused",
    TaskResumed => "containerd.events.TaskResumed",
    TaskOOM => "containerd.events.TaskOOM",
    v1::Metrics => "io.containerd.cgroups.v1.Metrics",
    v2::Metrics => "io.containerd.cgroups.v2.Metrics",
}
