//! The stdio URIs containerd hands a shim besides FIFO paths (its logging plugins, as
//! `ctr run --log-uri` and `nerdctl run -d` ask): `binary://<path>?<key>=<value>&...` names a
//! logging program to spawn, `file://<path>` a file to append to. The semantics are those of
//! containerd's Go shims (pkg/process/io.go): the binary's argv is its path followed by each
//! query key and, when it has one, its value.

use crate::error::CoreError;

/// Where a container's stdout and stderr go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StdioTarget {
    /// A FIFO (or any path) to open, or nothing when empty: containerd's usual case.
    Path(String),
    /// A logging program: spawn `program` with `args`.
    Binary { program: String, args: Vec<String> },
    /// A file to append both streams to.
    File(String),
}

impl StdioTarget {
    /// Reads the `field` (stdout or stderr) of a task request.
    pub fn parse(field: &str, value: &str) -> Result<StdioTarget, CoreError> {
        let invalid = |reason: &str| CoreError::InvalidValue {
            field: field.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let Some((scheme, rest)) = value.split_once("://") else {
            return Ok(StdioTarget::Path(value.to_string()));
        };
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let path = decode(path)
            .ok_or_else(|| invalid("the path is not valid percent-encoding of UTF-8"))?;
        if !path.starts_with('/') {
            return Err(invalid("the path must be absolute (scheme:///path)"));
        }
        match scheme {
            "binary" => {
                let mut args = Vec::new();
                for pair in query.split('&').filter(|pair| !pair.is_empty()) {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    let decoded = |text: &str| {
                        decode(&text.replace('+', " ")).ok_or_else(|| {
                            invalid("the query is not valid percent-encoding of UTF-8")
                        })
                    };
                    args.push(decoded(key)?);
                    if !value.is_empty() {
                        args.push(decoded(value)?);
                    }
                }
                Ok(StdioTarget::Binary {
                    program: path,
                    args,
                })
            }
            "file" if query.is_empty() => Ok(StdioTarget::File(path)),
            "file" => Err(invalid("a file:// URI takes no query")),
            "fifo" => Ok(StdioTarget::Path(path)),
            _ => Err(invalid("the scheme must be binary, file or fifo")),
        }
    }
}

/// Percent-decoding to UTF-8; `None` for bytes that are not UTF-8.
fn decode(text: &str) -> Option<String> {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .ok()
        .map(|decoded| decoded.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nerdctls_logging_uri_gives_its_program_and_arguments() {
        let uri = "binary:///usr/local/bin/nerdctl?_NERDCTL_INTERNAL_LOGGING=%2Fvar%2Flib%2Fnerdctl%2F1935db59";
        assert_eq!(
            StdioTarget::parse("stdout", uri).expect("valid"),
            StdioTarget::Binary {
                program: "/usr/local/bin/nerdctl".into(),
                args: vec![
                    "_NERDCTL_INTERNAL_LOGGING".into(),
                    "/var/lib/nerdctl/1935db59".into()
                ],
            }
        );
    }

    #[test]
    fn keys_without_values_and_paths_pass_through() {
        assert_eq!(
            StdioTarget::parse("stdout", "binary:///bin/logger?verbose&tag=a+b").expect("valid"),
            StdioTarget::Binary {
                program: "/bin/logger".into(),
                args: vec!["verbose".into(), "tag".into(), "a b".into()],
            }
        );
        assert_eq!(
            StdioTarget::parse("stderr", "file:///var/log/c1.log").expect("valid"),
            StdioTarget::File("/var/log/c1.log".into())
        );
        for plain in ["", "/run/containerd/fifo/1/c1-stdout"] {
            assert_eq!(
                StdioTarget::parse("stdout", plain).expect("valid"),
                StdioTarget::Path(plain.into())
            );
        }
    }

    #[test]
    fn bad_uris_are_refused_naming_the_field_and_the_value() {
        for (uri, reason) in [
            ("binary://relative/logger", "absolute"),
            ("binary:///bin/logger?x=%ff", "percent-encoding"),
            ("http:///bin/logger", "scheme"),
            ("file:///var/log/c1.log?x=1", "no query"),
        ] {
            let error = StdioTarget::parse("stdout", uri).expect_err(uri);
            let message = error.to_string();
            assert!(
                message.contains("stdout") && message.contains(uri) && message.contains(reason),
                "{message}"
            );
        }
    }
}
