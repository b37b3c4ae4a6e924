//! Just enough RESP over a plain `TcpStream` for readiness checks and tests.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// Timeout of connecting, reading and writing.
const IO_TIMEOUT: Duration = Duration::from_secs(1);

/// A reply, as far as this crate needs to tell replies apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    /// `+OK`, `+PONG`, ...
    Simple(String),
    /// `-NOAUTH ...`, `-WRONGPASS ...`, ...
    Error(String),
    /// `:42`
    Integer(i64),
    /// `$N` followed by N bytes; `None` for `$-1`.
    Bulk(Option<String>),
    /// Anything else (arrays, RESP3 types), as its first line.
    Other(String),
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Simple(s) => write!(f, "+{s}"),
            Reply::Error(s) => write!(f, "-{s}"),
            Reply::Integer(n) => write!(f, ":{n}"),
            Reply::Bulk(Some(s)) => write!(f, "{s:?}"),
            Reply::Bulk(None) => f.write_str("(nil)"),
            Reply::Other(s) => f.write_str(s),
        }
    }
}

/// A connection to a server on 127.0.0.1.
#[derive(Debug)]
pub(crate) struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    /// Connects to 127.0.0.1:`port`, with short timeouts.
    pub(crate) fn connect(port: u16) -> io::Result<Self> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            reader: BufReader::new(stream),
        })
    }

    /// Sends one command and reads its reply.
    pub(crate) fn command(&mut self, args: &[&str]) -> io::Result<Reply> {
        self.reader.get_mut().write_all(&encode(args))?;
        self.read_reply()
    }

    fn read_reply(&mut self) -> io::Result<Reply> {
        let line = self.read_line()?;
        let (kind, rest) = line.split_at(1);
        let rest = rest.to_owned();
        Ok(match kind {
            "+" => Reply::Simple(rest),
            "-" => Reply::Error(rest),
            ":" => Reply::Integer(rest.parse().map_err(|_| invalid(&line))?),
            "$" => {
                let len: i64 = rest.parse().map_err(|_| invalid(&line))?;
                match usize::try_from(len) {
                    Err(_) => Reply::Bulk(None),
                    Ok(len) => {
                        let mut data = vec![0; len + 2];
                        self.reader.read_exact(&mut data)?;
                        data.truncate(len);
                        Reply::Bulk(Some(String::from_utf8_lossy(&data).into_owned()))
                    }
                }
            }
            _ => Reply::Other(line),
        })
    }

    fn read_line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed by the server",
            ));
        }
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        if line.is_empty() {
            return Err(invalid("an empty line"));
        }
        Ok(line)
    }
}

/// `args` as a RESP array of bulk strings.
pub(crate) fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected reply: {what}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_commands_as_arrays_of_bulk_strings() {
        assert_eq!(encode(&["PING"]), b"*1\r\n$4\r\nPING\r\n");
        assert_eq!(
            encode(&["AUTH", "u", "pw"]),
            b"*3\r\n$4\r\nAUTH\r\n$1\r\nu\r\n$2\r\npw\r\n"
        );
    }
}
