//! A Task API call made straight to a shim's socket, as containerd makes it: one ttrpc request
//! frame (10-byte header: length, stream id, type 1 = request, flags) carrying a
//! `ttrpc.Request { service, method, payload }`, the payload's protobuf written by hand. It
//! times the shim itself, without ctr's start-up or containerd's own locks in the way.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The v2 task service (containerd 1.6, 1.7; 2.x bridges to it).
pub const TASK_V2: &str = "containerd.task.v2.Task";

/// A protobuf message under construction, field by field.
#[derive(Default, Clone)]
pub struct Message(Vec<u8>);

impl Message {
    pub fn bytes(mut self, number: u32, bytes: &[u8]) -> Self {
        varint(&mut self.0, u64::from(number << 3 | 2));
        varint(&mut self.0, bytes.len() as u64);
        self.0.extend_from_slice(bytes);
        self
    }

    pub fn text(self, number: u32, text: &str) -> Self {
        self.bytes(number, text.as_bytes())
    }

    pub fn uint(mut self, number: u32, value: u64) -> Self {
        varint(&mut self.0, u64::from(number << 3));
        varint(&mut self.0, value);
        self
    }

    pub fn encoded(&self) -> &[u8] {
        &self.0
    }
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// `StateRequest { id }`.
pub fn state_request(id: &str) -> Message {
    Message::default().text(1, id)
}

/// `KillRequest { id, exec_id: "", signal, all: false }`.
pub fn kill_request(id: &str, signal: u32) -> Message {
    Message::default().text(1, id).uint(3, u64::from(signal))
}

/// `ConnectRequest { id }`.
pub fn connect_request(id: &str) -> Message {
    Message::default().text(1, id)
}

/// The frame calling `service/method` with `payload`.
pub fn request_frame(service: &str, method: &str, payload: &Message) -> Vec<u8> {
    let request = Message::default()
        .text(1, service)
        .text(2, method)
        .bytes(3, payload.encoded());
    let mut frame = (request.encoded().len() as u32).to_be_bytes().to_vec();
    frame.extend(1u32.to_be_bytes());
    frame.extend([1, 0]);
    frame.extend_from_slice(request.encoded());
    frame
}

/// What the shim answered, and how long the whole call took (connect included).
#[derive(Debug)]
pub struct Answer {
    /// The gRPC status code (0: OK).
    pub code: u64,
    pub message: String,
    pub took: Duration,
}

/// The socket path of the shim serving container `id`, from the `address` file containerd
/// writes in its bundle.
pub fn shim_socket(bundle: &Path) -> io::Result<PathBuf> {
    let address = std::fs::read_to_string(bundle.join("address"))?;
    Ok(PathBuf::from(address.trim().trim_start_matches("unix://")))
}

/// Calls `containerd.task.v2.Task/method` on the shim at `socket`; an error when it does not
/// answer within `limit`.
pub fn call(socket: &Path, method: &str, payload: &Message, limit: Duration) -> io::Result<Answer> {
    let started = Instant::now();
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(limit))?;
    stream.write_all(&request_frame(TASK_V2, method, payload))?;
    let mut header = [0u8; 10];
    stream.read_exact(&mut header)?;
    let length = u32::from_be_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body)?;
    let took = started.elapsed();
    if header[8] != 2 {
        return Err(io::Error::other(format!(
            "not a ttrpc response: {header:?}"
        )));
    }
    let (code, message) = status_of(&body)?;
    Ok(Answer {
        code,
        message,
        took,
    })
}

/// The status of a `ttrpc.Response { status = 1, payload = 2 }` (absent: OK).
fn status_of(response: &[u8]) -> io::Result<(u64, String)> {
    let mut code = 0;
    let mut message = String::new();
    for (number, value) in fields(response)? {
        if let (1, Field::Bytes(status)) = (number, value) {
            for (number, value) in fields(status)? {
                match (number, value) {
                    (1, Field::Varint(value)) => code = value,
                    (2, Field::Bytes(text)) => message = String::from_utf8_lossy(text).into(),
                    _ => {}
                }
            }
        }
    }
    Ok((code, message))
}

enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

/// The fields of a protobuf message (varints and length-delimited ones only, all ttrpc uses).
fn fields(mut bytes: &[u8]) -> io::Result<Vec<(u64, Field<'_>)>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let key = read_varint(&mut bytes)?;
        let field = match key & 7 {
            0 => Field::Varint(read_varint(&mut bytes)?),
            2 => {
                let length = read_varint(&mut bytes)? as usize;
                if length > bytes.len() {
                    return Err(io::Error::other("truncated protobuf field"));
                }
                let (value, rest) = bytes.split_at(length);
                bytes = rest;
                Field::Bytes(value)
            }
            other => return Err(io::Error::other(format!("protobuf wire type {other}"))),
        };
        out.push((key >> 3, field));
    }
    Ok(out)
}

fn read_varint(bytes: &mut &[u8]) -> io::Result<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes
            .split_first()
            .ok_or_else(|| io::Error::other("truncated varint"))?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(io::Error::other("varint too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_status_is_read_back() {
        let status = Message::default()
            .uint(1, 5)
            .text(2, "container \"x\" not found");
        let response = Message::default().bytes(1, status.encoded());
        let (code, message) = status_of(response.encoded()).expect("parses");
        assert_eq!((code, message.as_str()), (5, "container \"x\" not found"));
        assert_eq!(status_of(&[]).expect("empty").0, 0);
    }

    #[test]
    fn a_frame_has_the_ttrpc_header_and_the_request() {
        let frame = request_frame(TASK_V2, "State", &state_request("c1"));
        let length = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(length, frame.len() - 10);
        assert_eq!(&frame[4..10], &[0, 0, 0, 1, 1, 0]);
        let request = fields(&frame[10..]).expect("parses");
        assert!(matches!(request[1], (2, Field::Bytes(b"State"))));
    }
}
