//! The delegate runc's own features document (`runc features`, runc 1.1 and later). `-info`
//! passes on its mount options: containers without urunc configuration run under that runc, so
//! what it honours is what they get (Debian's runc 1.1.5 lists `rro` among them).

use std::process::{Command, Stdio};

use serde::Deserialize;

use crate::error::{Result, ShimError};
use crate::runc::RUNC_BINARY;

/// The part of runtime-spec's features document that `-info` passes on.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RuncFeatures {
    #[serde(default)]
    mount_options: Vec<String>,
}

/// The mount options the delegate runc reports.
pub fn mount_options() -> Result<Vec<String>> {
    let output = Command::new(RUNC_BINARY)
        .arg("features")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ShimError::io(format!("run {RUNC_BINARY} features"), e))?;
    if !output.status.success() {
        return Err(ShimError::Runc {
            args: "features".to_string(),
            status: output.status.code().unwrap_or(-1),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    parse(&output.stdout)
}

fn parse(document: &[u8]) -> Result<Vec<String>> {
    serde_json::from_slice::<RuncFeatures>(document)
        .map(|features| features.mount_options)
        .map_err(|source| ShimError::RuncOutput {
            args: "features",
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_mount_options_of_runcs_document() {
        let document = br#"{"ociVersionMin":"1.0.0","mountOptions":["rbind","rro"],"linux":{}}"#;
        assert_eq!(parse(document).unwrap(), ["rbind", "rro"]);
        // A document without the list: runc honours no option it names.
        assert!(parse(br#"{"ociVersionMin":"1.0.0"}"#).unwrap().is_empty());
    }

    #[test]
    fn unreadable_output_is_an_error_naming_the_command() {
        let error = parse(b"Usage: runc [global options]")
            .unwrap_err()
            .to_string();
        assert!(error.contains("runc features"), "{error}");
    }

    #[test]
    fn the_runc_of_this_host_answers_when_installed() {
        // The runc on PATH is the one delegated containers run under. Other tests of this
        // binary reap with waitpid(-1) and may take runc's status (ECHILD): ask again then.
        let stolen = |r: &Result<Vec<String>>| matches!(r, Err(ShimError::Io { source, .. }) if source.raw_os_error() == Some(libc::ECHILD));
        let mut answer = mount_options();
        for _ in 0..5 {
            if !stolen(&answer) {
                break;
            }
            answer = mount_options();
        }
        match answer {
            Ok(options) => assert!(options.iter().any(|o| o == "bind"), "{options:?}"),
            Err(ShimError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                urunc_test_skip::skipped!(
                    "SKIPPED: the_runc_of_this_host_answers_when_installed: runc is not installed"
                )
            }
            Err(other) => panic!("runc features: {other}"),
        }
    }
}
