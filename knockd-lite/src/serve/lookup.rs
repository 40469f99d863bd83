//! Reverse DNS for `-l`: host names for log lines, looked up on a thread of their own so a
//! slow resolver never holds up capture or matching. Commands always get the numeric
//! address; names never leave the log.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, channel, sync_channel};

use crate::sys;

/// Lookups waiting for the resolver thread; beyond this, lines keep their number.
const QUEUE: usize = 64;
/// Names remembered; the cache starts over when full (a spoofed flood must not grow it).
const CACHE: usize = 4096;

/// The reverse name of `ip`, if it has one that is safe to print: a PTR record is chosen by
/// whoever controls the address, so anything but a plain host name is refused.
pub(crate) fn reverse(ip: IpAddr) -> Option<String> {
    sys::reverse_name(ip).filter(|name| plain_host_name(name))
}

/// Letters, digits, `-`, `_` and `.`, up to 253 bytes: nothing that could forge a log line
/// or read as an address.
fn plain_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name.parse::<IpAddr>().is_err()
}

/// What is known about an address's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Name {
    /// Looked up: its name, or `None` when it has none.
    Known(Option<String>),
    /// Being looked up.
    Pending,
    /// Not looked up (the queue is full): log the number.
    Unavailable,
}

/// A resolver thread and its cache.
#[derive(Debug)]
pub(crate) struct Resolver {
    tx: SyncSender<IpAddr>,
    rx: Receiver<(IpAddr, Option<String>)>,
    cache: HashMap<IpAddr, Option<String>>,
    pending: HashSet<IpAddr>,
}

impl Resolver {
    /// Starts the thread, which looks names up with `resolve` (normally [`reverse`]).
    pub(crate) fn start(
        resolve: impl Fn(IpAddr) -> Option<String> + Send + 'static,
    ) -> std::io::Result<Resolver> {
        let (tx, requests) = sync_channel::<IpAddr>(QUEUE);
        let (answers, rx) = channel();
        std::thread::Builder::new()
            .name("lookup".into())
            .spawn(move || {
                // Ends when the Resolver, and with it the sender, is dropped.
                for ip in requests {
                    if answers.send((ip, resolve(ip))).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Resolver {
            tx,
            rx,
            cache: HashMap::new(),
            pending: HashSet::new(),
        })
    }

    /// The name of `ip`, asking the thread if it is not known yet.
    pub(crate) fn name(&mut self, ip: IpAddr) -> Name {
        self.collect();
        if let Some(name) = self.cache.get(&ip) {
            return Name::Known(name.clone());
        }
        if self.pending.contains(&ip) {
            return Name::Pending;
        }
        match self.tx.try_send(ip) {
            Ok(()) => {
                self.pending.insert(ip);
                Name::Pending
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Name::Unavailable,
        }
    }

    /// The name of `ip` if it is known now, without asking.
    pub(crate) fn known(&mut self, ip: IpAddr) -> Option<Option<String>> {
        self.collect();
        self.cache.get(&ip).cloned()
    }

    fn collect(&mut self) {
        while let Ok((ip, name)) = self.rx.try_recv() {
            self.pending.remove(&ip);
            if self.cache.len() >= CACHE {
                self.cache.clear();
            }
            self.cache.insert(ip, name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn only_plain_host_names_are_printed() {
        for ok in ["client.test", "a-b_c.example.org", "x"] {
            assert!(plain_host_name(ok), "{ok}");
        }
        for bad in [
            "",
            "evil\n[2026-01-01 00:00] 10.0.0.1: door: OPEN SESAME",
            "a b",
            "name:with:colons",
            "192.0.2.7",
            "::1",
            &"a".repeat(254),
        ] {
            assert!(!plain_host_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn localhost_has_a_name() {
        // /etc/hosts maps 127.0.0.1 to localhost on every system the tests run on.
        assert_eq!(
            reverse("127.0.0.1".parse().unwrap()).as_deref(),
            Some("localhost")
        );
    }

    #[test]
    fn names_come_from_the_thread_and_are_cached() {
        let mut r = Resolver::start(|ip| match ip.to_string().as_str() {
            "192.0.2.1" => Some("client.test".into()),
            _ => None,
        })
        .unwrap();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.9".parse().unwrap();
        assert_eq!(r.name(a), Name::Pending);
        assert_eq!(r.name(b), Name::Pending);
        let deadline = Instant::now() + Duration::from_secs(5);
        while r.known(a).is_none() || r.known(b).is_none() {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(r.name(a), Name::Known(Some("client.test".into())));
        assert_eq!(r.name(b), Name::Known(None));
    }

    #[test]
    fn a_full_queue_leaves_the_number() {
        // A resolver that never answers: the queue fills up.
        let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
        let hold = std::sync::Mutex::new(hold_rx);
        let mut r = Resolver::start(move |_| {
            let _ = hold.lock().unwrap().recv();
            None
        })
        .unwrap();
        let mut unavailable = 0;
        for i in 0..(QUEUE as u32 + 10) {
            let ip = IpAddr::V4((0xC000_0200 + i).into());
            if r.name(ip) == Name::Unavailable {
                unavailable += 1;
            }
        }
        assert!(unavailable >= 8, "{unavailable}");
        drop(hold_tx);
    }
}
