//! Times in containerd's protobuf form, made only where responses and events are built: the
//! container domain keeps `SystemTime`.

use std::time::{SystemTime, UNIX_EPOCH};

use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim_protos::protobuf::MessageField;

/// `at` as a protobuf `Timestamp`; a time before the epoch (a clock set far back) is the epoch.
pub fn proto_timestamp(at: SystemTime) -> MessageField<Timestamp> {
    let since_epoch = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    MessageField::some(Timestamp {
        seconds: since_epoch.as_secs() as i64,
        nanos: since_epoch.subsec_nanos() as i32,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn splits_seconds_and_nanos() {
        let at = UNIX_EPOCH + Duration::new(1_764_690_000, 123_456_789);
        let stamp = proto_timestamp(at);
        assert_eq!(stamp.seconds, 1_764_690_000);
        assert_eq!(stamp.nanos, 123_456_789);
    }

    #[test]
    fn a_time_before_the_epoch_is_the_epoch() {
        let stamp = proto_timestamp(UNIX_EPOCH - Duration::from_secs(5));
        assert_eq!((stamp.seconds, stamp.nanos), (0, 0));
    }
}
