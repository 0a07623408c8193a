//! Knative's queue-proxy next to a unikernel: urunc's rewrite
//! (pkg/unikontainers/utils.go `handleQueueProxy`).
//!
//! The unikernel `user-container` of a Knative pod gets the static network
//! (`knative::network_mode`): the guest answers at a fixed address behind the
//! tap (netns's `STATIC_GUEST_IP`, passed in as `guest_ip`), not on eth0. The
//! queue-proxy sidecar (a plain container, run with runc) probes the user
//! container's readiness at the host its `SERVING_READINESS_PROBE` JSON names
//! (Knative writes 127.0.0.1) and proxies to `REDIRECT_IP` when set (urunc's
//! queue-proxy build reads it). So, as urunc does for the container CRI names
//! `queue-proxy`: every `"host"` in the probe becomes the guest address and
//! `REDIRECT_IP=<guest address>` is added.
//!
//! Departures from urunc, on purpose: the probe is rewritten as JSON (every
//! `host` string member, at any depth, urunc's regular expression did the
//! same on well-formed JSON), in place, so the environment keeps its order
//! (urunc swapped the last entry into its slot); a container without the
//! probe gets only `REDIRECT_IP` (urunc appended an empty entry); a probe that
//! is not JSON is refused naming the variable (urunc's regular expression
//! left it as it was, so the probe went to the wrong address silently); an
//! existing `REDIRECT_IP` is replaced, not doubled.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use crate::error::CoreError;
use crate::knative::{cri_container_name, QUEUE_PROXY};

const READINESS_PROBE: &str = "SERVING_READINESS_PROBE";
const REDIRECT_IP: &str = "REDIRECT_IP";

/// urunc's rule: the container CRI names `queue-proxy` (the pod runs under
/// the urunc runtime class, so its user container is the unikernel).
pub fn is_queue_proxy(annotations: &HashMap<String, String>) -> bool {
    cri_container_name(annotations) == Some(QUEUE_PROXY)
}

/// The queue-proxy's `process.env` with the readiness probe pointed at the
/// guest at `guest_ip` and `REDIRECT_IP` set to it.
pub fn rewrite_queue_proxy_env(
    env: &[String],
    guest_ip: Ipv4Addr,
) -> Result<Vec<String>, CoreError> {
    let mut rewritten = Vec::with_capacity(env.len() + 1);
    for (index, entry) in env.iter().enumerate() {
        match entry.split_once('=') {
            Some((READINESS_PROBE, probe)) => {
                let field = format!("process.env[{index}] {READINESS_PROBE}");
                rewritten.push(format!(
                    "{READINESS_PROBE}={}",
                    retarget(&field, probe, guest_ip)?
                ));
            }
            Some((REDIRECT_IP, _)) => {}
            _ => rewritten.push(entry.clone()),
        }
    }
    rewritten.push(format!("{REDIRECT_IP}={guest_ip}"));
    Ok(rewritten)
}

fn retarget(field: &str, probe: &str, guest_ip: Ipv4Addr) -> Result<String, CoreError> {
    let mut value: serde_json::Value = serde_json::from_str(probe).map_err(|e| {
        CoreError::invalid(
            field,
            probe,
            format!("Knative's readiness probe must be JSON: {e}"),
        )
    })?;
    set_hosts(&mut value, &guest_ip.to_string());
    Ok(value.to_string())
}

fn set_hosts(value: &mut serde_json::Value, host: &str) {
    match value {
        serde_json::Value::Object(members) => {
            for (key, member) in members.iter_mut() {
                if key == "host" && member.is_string() {
                    *member = serde_json::Value::String(host.into());
                } else {
                    set_hosts(member, host);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|item| set_hosts(item, host)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knative::{CRI_CONTAINER_NAME, USER_CONTAINER};

    /// Any address: the rewrite puts whatever it is given.
    const GUEST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 7);

    fn env(entries: &[&str]) -> Vec<String> {
        entries.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn only_the_container_cri_names_queue_proxy_is_rewritten() {
        let named = |name: &str| HashMap::from([(CRI_CONTAINER_NAME.to_string(), name.into())]);
        assert!(is_queue_proxy(&named(QUEUE_PROXY)));
        assert!(!is_queue_proxy(&named(USER_CONTAINER)));
        assert!(!is_queue_proxy(&named("queue-proxy-2")));
        assert!(!is_queue_proxy(&HashMap::new()));
    }

    #[test]
    fn the_probe_host_becomes_the_guest_address_in_place() {
        let before = env(&[
            "PATH=/bin",
            r#"SERVING_READINESS_PROBE={"tcpSocket":{"port":8080,"host":"127.0.0.1"},"successThreshold":1}"#,
            "SERVING_PORT=8012",
        ]);
        let after = rewrite_queue_proxy_env(&before, GUEST).expect("rewrites");
        assert_eq!(
            after,
            env(&[
                "PATH=/bin",
                r#"SERVING_READINESS_PROBE={"successThreshold":1,"tcpSocket":{"host":"192.0.2.7","port":8080}}"#,
                "SERVING_PORT=8012",
                "REDIRECT_IP=192.0.2.7",
            ])
        );
    }

    #[test]
    fn every_host_of_a_multi_container_probe_and_http_get_is_rewritten() {
        let before = env(&[
            r#"SERVING_READINESS_PROBE=[{"httpGet":{"host":"127.0.0.1","path":"/","port":8080,"httpHeaders":[{"name":"host","value":"x"}]}},{"tcpSocket":{"host":"localhost","port":9090}}]"#,
        ]);
        let after = rewrite_queue_proxy_env(&before, GUEST).expect("rewrites");
        let probe: serde_json::Value =
            serde_json::from_str(after[0].split_once('=').expect("entry").1).expect("json");
        assert_eq!(probe[0]["httpGet"]["host"], "192.0.2.7");
        assert_eq!(
            probe[0]["httpGet"]["httpHeaders"][0]["value"], "x",
            "a header named host is not an address"
        );
        assert_eq!(probe[1]["tcpSocket"]["host"], "192.0.2.7");
        assert_eq!(probe[1]["tcpSocket"]["port"], 9090);
    }

    #[test]
    fn without_a_probe_only_the_redirect_is_added_and_never_doubled() {
        let after = rewrite_queue_proxy_env(&env(&["A=1", "REDIRECT_IP=10.0.0.1"]), GUEST)
            .expect("rewrites");
        assert_eq!(after, env(&["A=1", "REDIRECT_IP=192.0.2.7"]));
    }

    #[test]
    fn a_probe_that_is_not_json_is_refused_naming_it() {
        let error =
            rewrite_queue_proxy_env(&env(&["X=1", "SERVING_READINESS_PROBE=host:1"]), GUEST)
                .expect_err("refused")
                .to_string();
        assert!(
            error.contains("process.env[1] SERVING_READINESS_PROBE") && error.contains("host:1"),
            "{error}"
        );
    }
}
