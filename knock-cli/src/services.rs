//! Service names in hits (`ssh`, `http:udp`), looked up as knock(1) looks them up: in the
//! system's services database, read here at the client's edge and handed to the pure hit
//! grammar as a [`PortNames`] table.
//!
//! knock(1) passes the name to getaddrinfo without a socket type, which takes the port of
//! the name's first entry, tcp before udp: `knock -u HOST ssh` sends UDP to 22 although
//! the database lists ssh for tcp only. This table does the same, except that an entry of
//! the hit's own protocol wins when there is one (the rare name whose tcp and udp ports
//! differ goes where its protocol says). Names are compared exactly, as glibc and the BSDs
//! compare them.

use std::cell::OnceCell;
use std::path::{Path, PathBuf};

use knock_core::hit::{PortNames, Proto};

/// One line of a services file: `ssh 22/tcp` with its aliases.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Service {
    pub names: Vec<String>,
    pub port: u16,
    /// `tcp`, `udp` or another protocol the file names (`ddp`, `sctp`).
    pub proto: String,
}

/// The lines of a services file that name a port: `NAME PORT/PROTO [ALIAS...] [# ...]`.
/// Anything else (comments, blank or malformed lines) is skipped, as the C library skips it.
pub(crate) fn parse(text: &str) -> Vec<Service> {
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next().unwrap_or_default();
            let mut words = line.split_whitespace();
            let name = words.next()?;
            let (port, proto) = words.next()?.split_once('/')?;
            Some(Service {
                names: std::iter::once(name)
                    .chain(words)
                    .map(str::to_string)
                    .collect(),
                port: port.parse().ok().filter(|p| *p != 0)?,
                proto: proto.to_ascii_lowercase(),
            })
        })
        .collect()
}

/// The port of `name` in `services`: its first entry for `proto`, else its first entry for
/// any protocol.
pub(crate) fn lookup(services: &[Service], name: &str, proto: Proto) -> Option<u16> {
    let named = || {
        services
            .iter()
            .filter(|s| s.names.iter().any(|n| n == name))
    };
    named()
        .find(|s| s.proto == proto.as_str())
        .or_else(|| named().next())
        .map(|s| s.port)
}

/// The system's services database, read once, on the first name looked up: a command line
/// of numbers never opens it.
pub(crate) struct Services {
    path: PathBuf,
    table: OnceCell<Result<Vec<Service>, String>>,
}

impl Services {
    /// The database at `path`.
    pub(crate) fn at(path: impl Into<PathBuf>) -> Services {
        Services {
            path: path.into(),
            table: OnceCell::new(),
        }
    }

    /// This system's database: `/etc/services` on Unix, `%SystemRoot%\System32\drivers\etc\
    /// services` on Windows (the file Winsock's getservbyname reads).
    pub(crate) fn system() -> Services {
        Services::at(system_path())
    }

    /// A table already read, for tests.
    #[cfg(test)]
    pub(crate) fn from_text(path: &str, text: &str) -> Services {
        let services = Services::at(path);
        let _ = services.table.set(Ok(parse(text)));
        services
    }

    fn table(&self) -> &Result<Vec<Service>, String> {
        self.table.get_or_init(|| read(&self.path))
    }
}

fn read(path: &Path) -> Result<Vec<Service>, String> {
    std::fs::read_to_string(path)
        .map(|text| parse(&text))
        .map_err(|e| e.to_string())
}

impl PortNames for Services {
    fn port(&self, name: &str, proto: Proto) -> Option<u16> {
        lookup(self.table().as_ref().ok()?, name, proto)
    }

    fn source(&self) -> Option<String> {
        Some(match self.table() {
            Ok(_) => self.path.display().to_string(),
            Err(e) => format!("{}, which cannot be read ({e})", self.path.display()),
        })
    }
}

#[cfg(not(windows))]
fn system_path() -> PathBuf {
    PathBuf::from("/etc/services")
}

#[cfg(windows)]
fn system_path() -> PathBuf {
    let root = std::env::var_os("SystemRoot").unwrap_or_else(|| r"C:\Windows".into());
    PathBuf::from(root).join(r"System32\drivers\etc\services")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as Debian's netbase and Windows write them, and some that are not entries.
    const TEXT: &str = "\
# Network services, Internet style
tcpmux\t\t1/tcp\t\t\t\t# TCP port service multiplexer
ssh\t\t22/tcp\t\t\t\t# SSH Remote Login Protocol
domain\t\t53/tcp\t\t\t\t# Name-Domain Server
domain\t\t53/udp
http\t\t80/tcp\t\twww\t\t# WorldWideWeb HTTP
kerberos\t88/tcp\t\tkerberos5 krb5 kerberos-sec\t# Kerberos v5
kerberos\t88/udp\t\tkerberos5 krb5 kerberos-sec\t# Kerberos v5
ntp\t\t123/udp\t\t\t\t# Network Time Protocol
split\t\t5000/udp
split\t\t5001/tcp
echo                7/TCP
broken              notaport/tcp
zero                0/tcp
noslash             99
   # indented comment
";

    #[test]
    fn entries_are_read_as_the_c_library_reads_them() {
        let services = parse(TEXT);
        let names: Vec<&str> = services.iter().map(|s| s.names[0].as_str()).collect();
        assert_eq!(
            names,
            [
                "tcpmux", "ssh", "domain", "domain", "http", "kerberos", "kerberos", "ntp",
                "split", "split", "echo"
            ]
        );
        assert_eq!(
            services[4],
            Service {
                names: vec!["http".into(), "www".into()],
                port: 80,
                proto: "tcp".into()
            }
        );
    }

    #[test]
    fn lookup_prefers_the_hits_protocol_then_takes_any() {
        let services = parse(TEXT);
        let table: &[(&str, Proto, Option<u16>)] = &[
            ("ssh", Proto::Tcp, Some(22)),
            // knock(1) sends `-u ssh` to 22 too: the tcp entry serves when udp has none.
            ("ssh", Proto::Udp, Some(22)),
            ("ntp", Proto::Tcp, Some(123)),
            ("domain", Proto::Udp, Some(53)),
            ("www", Proto::Tcp, Some(80)),
            ("krb5", Proto::Udp, Some(88)),
            ("split", Proto::Tcp, Some(5001)),
            ("split", Proto::Udp, Some(5000)),
            ("echo", Proto::Tcp, Some(7)),
            // Exact names, as getservbyname compares them.
            ("SSH", Proto::Tcp, None),
            ("nosuch", Proto::Tcp, None),
            ("broken", Proto::Tcp, None),
            ("zero", Proto::Tcp, None),
            ("noslash", Proto::Tcp, None),
        ];
        for (name, proto, want) in table {
            assert_eq!(lookup(&services, name, *proto), *want, "{name} {proto}");
        }
    }

    #[test]
    fn a_missing_database_is_named_in_the_error() {
        let services = Services::at("/nonexistent/services");
        assert_eq!(services.port("ssh", Proto::Tcp), None);
        let source = services.source().unwrap();
        assert!(
            source.starts_with("/nonexistent/services, which cannot be read ("),
            "{source}"
        );
        let table = Services::from_text("/etc/services", TEXT);
        assert_eq!(table.port("http", Proto::Udp), Some(80));
        assert_eq!(table.source().as_deref(), Some("/etc/services"));
    }

    #[test]
    fn the_systems_database_reads_like_the_c_librarys() {
        // On a system with a services file, the common names are where everyone expects.
        let system = Services::system();
        if system.table().is_err() {
            eprintln!("SKIP: no services database at {}", system.path.display());
            return;
        }
        assert_eq!(system.port("ssh", Proto::Tcp), Some(22));
        assert_eq!(system.port("http", Proto::Tcp), Some(80));
    }
}
