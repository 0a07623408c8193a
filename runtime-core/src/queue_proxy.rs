//! Knative's queue-proxy next to a unikernel: urunc's rewrite
//! (pkg/unikontainers/utils.go `handleQueueProxy`).
//!
//! The unikernel `user-container` of a Knative pod gets the static network:
//! the guest answers at 172.16.1.2 behind the tap, not on eth0. The
//! queue-proxy sidecar (a plain container, run with runc) probes the user
//! container's readiness at the host its `SERVING_READINESS_PROBE` JSON names
//! (Knative writes 127.0.0.1) and proxies to `REDIRECT_IP` when set (urunc's
//! queue-proxy build reads it). So, as urunc does for the container CRI names
//! `queue-proxy`: every `"host"` in the probe becomes 172.16.1.2 and
//! `REDIRECT_IP=172.16.1.2` is added.
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

use crate::error::CoreError;

/// The guest address of urunc's static network, where the queue-proxy must
/// send probes and traffic.
pub const QUEUE_PROXY_REDIRECT_IP: &str = "172.16.1.2";

const CRI_CONTAINER_NAME: &str = "io.kubernetes.cri.container-name";
const QUEUE_PROXY_NAME: &str = "queue-proxy";
const READINESS_PROBE: &str = "SERVING_READINESS_PROBE";
const REDIRECT_IP: &str = "REDIRECT_IP";

/// urunc's rule: the container CRI names `queue-proxy` (the pod runs under
/// the urunc runtime class, so its user container is the unikernel).
pub fn is_queue_proxy(annotations: &HashMap<String, String>) -> bool {
    annotations.get(CRI_CONTAINER_NAME).map(String::as_str) == Some(QUEUE_PROXY_NAME)
}

/// The queue-proxy's `process.env` with the readiness probe pointed at the
/// guest and `REDIRECT_IP` set.
pub fn rewrite_queue_proxy_env(env: &[String]) -> Result<Vec<String>, CoreError> {
    let mut rewritten = Vec::with_capacity(env.len() + 1);
    for (index, entry) in env.iter().enumerate() {
        match entry.split_once('=') {
            Some((READINESS_PROBE, probe)) => {
                let field = format!("process.env[{index}] {READINESS_PROBE}");
                rewritten.push(format!("{READINESS_PROBE}={}", retarget(&field, probe)?));
            }
            Some((REDIRECT_IP, _)) => {}
            _ => rewritten.push(entry.clone()),
        }
    }
    rewritten.push(format!("{REDIRECT_IP}={QUEUE_PROXY_REDIRECT_IP}"));
    Ok(rewritten)
}

fn retarget(field: &str, probe: &str) -> Result<String, CoreError> {
    let mut value: serde_json::Value = serde_json::from_str(probe).map_err(|e| {
        CoreError::invalid(
            field,
            probe,
            format!("Knative's readiness probe must be JSON: {e}"),
        )
    })?;
    set_hosts(&mut value);
    Ok(value.to_string())
}

fn set_hosts(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(members) => {
            for (key, member) in members.iter_mut() {
                if key == "host" && member.is_string() {
                    *member = serde_json::Value::String(QUEUE_PROXY_REDIRECT_IP.into());
                } else {
                    set_hosts(member);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(set_hosts),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(entries: &[&str]) -> Vec<String> {
        entries.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn only_the_container_cri_names_queue_proxy_is_rewritten() {
        let named = |name: &str| HashMap::from([(CRI_CONTAINER_NAME.to_string(), name.into())]);
        assert!(is_queue_proxy(&named("queue-proxy")));
        assert!(!is_queue_proxy(&named("user-container")));
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
        let after = rewrite_queue_proxy_env(&before).expect("rewrites");
        assert_eq!(
            after,
            env(&[
                "PATH=/bin",
                r#"SERVING_READINESS_PROBE={"successThreshold":1,"tcpSocket":{"host":"172.16.1.2","port":8080}}"#,
                "SERVING_PORT=8012",
                "REDIRECT_IP=172.16.1.2",
            ])
        );
    }

    #[test]
    fn every_host_of_a_multi_container_probe_and_http_get_is_rewritten() {
        let before = env(&[
            r#"SERVING_READINESS_PROBE=[{"httpGet":{"host":"127.0.0.1","path":"/","port":8080,"httpHeaders":[{"name":"host","value":"x"}]}},{"tcpSocket":{"host":"localhost","port":9090}}]"#,
        ]);
        let after = rewrite_queue_proxy_env(&before).expect("rewrites");
        let probe: serde_json::Value =
            serde_json::from_str(after[0].split_once('=').expect("entry").1).expect("json");
        assert_eq!(probe[0]["httpGet"]["host"], "172.16.1.2");
        assert_eq!(
            probe[0]["httpGet"]["httpHeaders"][0]["value"], "x",
            "a header named host is not an address"
        );
        assert_eq!(probe[1]["tcpSocket"]["host"], "172.16.1.2");
        assert_eq!(probe[1]["tcpSocket"]["port"], 9090);
    }

    #[test]
    fn without_a_probe_only_the_redirect_is_added_and_never_doubled() {
        let after =
            rewrite_queue_proxy_env(&env(&["A=1", "REDIRECT_IP=10.0.0.1"])).expect("rewrites");
        assert_eq!(after, env(&["A=1", "REDIRECT_IP=172.16.1.2"]));
    }

    #[test]
    fn a_probe_that_is_not_json_is_refused_naming_it() {
        let error = rewrite_queue_proxy_env(&env(&["X=1", "SERVING_READINESS_PROBE=host:1"]))
            .expect_err("refused")
            .to_string();
        assert!(
            error.contains("process.env[1] SERVING_READINESS_PROBE") && error.contains("host:1"),
            "{error}"
        );
    }
}
