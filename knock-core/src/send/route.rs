//! The sender a client holds: each hit routed to the plain or the raw sender.

use super::error::{Refusal, SendError};
use super::plain::PlainSender;
use super::privilege::Privilege;
use super::raw::RawSender;
use super::{Dest, Sender};
use crate::hit::{Hit, HitFlags, Proto, TcpFlags};

/// How a run wants its hits sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SendOptions {
    /// Send TCP hits without flags raw too, as bare SYNs (knock's `--raw`).
    pub raw_tcp: bool,
    /// The source port of every hit (knock's `--source-port`); `None` for a random port
    /// per raw hit and an ephemeral one per plain hit.
    pub source_port: Option<u16>,
}

/// Which sender a hit goes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// A connect SYN or a UDP datagram, without privileges.
    Plain,
    /// A packet built whole and sent through a raw socket.
    Raw,
}

/// Routes each hit:
///
/// * UDP hits go plain, always;
/// * TCP hits with exact flags go raw, except a lone SYN when raw sockets are not
///   available (no privileges, or Windows): a connect SYN carries exactly that flag;
/// * other TCP hits go plain, or raw as bare SYNs under [`SendOptions::raw_tcp`].
///
/// [`check`](Sender::check) asks the chosen sender, so a hit that would go raw without the
/// privilege for it is refused before anything is sent. Generic over the two senders so
/// routing is tested with stand-ins; [`KnockSender::new`] makes the real ones.
#[derive(Debug)]
pub struct KnockSender<P = PlainSender, R = RawSender> {
    plain: P,
    raw: R,
    raw_tcp: bool,
}

impl KnockSender {
    /// The real senders, for a process with `privilege` (normally
    /// [`Privilege::current`], asked once before the first hit is checked).
    pub fn new(options: SendOptions, privilege: Privilege) -> KnockSender {
        KnockSender::with_senders(
            PlainSender::with_source_port(options.source_port),
            RawSender::new(privilege, options.source_port),
            options.raw_tcp,
        )
    }
}

impl<P: Sender, R: Sender> KnockSender<P, R> {
    /// Routes between these two senders; `raw_tcp` as in [`SendOptions`].
    pub fn with_senders(plain: P, raw: R, raw_tcp: bool) -> KnockSender<P, R> {
        KnockSender {
            plain,
            raw,
            raw_tcp,
        }
    }

    /// Where `hit` goes.
    fn routed(&self, hit: &Hit) -> Route {
        match (hit.proto, hit.flags) {
            (Proto::Udp, _) => Route::Plain,
            (Proto::Tcp, _) if self.raw_tcp => Route::Raw,
            (Proto::Tcp, HitFlags::Exact(flags))
                if flags == TcpFlags::SYN && self.raw.check(hit).is_err() =>
            {
                Route::Plain
            }
            (Proto::Tcp, HitFlags::Exact(_)) => Route::Raw,
            (Proto::Tcp, HitFlags::Plain | HitFlags::Any) => Route::Plain,
        }
    }
}

/// The hit the plain sender gets: a lone written SYN becomes a plain hit, which is the
/// same SYN on the wire.
fn as_plain(hit: &Hit) -> Hit {
    match (hit.proto, hit.flags) {
        (Proto::Tcp, HitFlags::Exact(TcpFlags::SYN)) => Hit::tcp(hit.port),
        _ => *hit,
    }
}

impl<P: Sender, R: Sender> Sender for KnockSender<P, R> {
    fn route(&self, hit: &Hit) -> Route {
        self.routed(hit)
    }

    /// Only the hits that go plain bind a port: raw ones write it into their header.
    fn check_source(&self, hits: &[Hit], dst: Dest) -> Result<(), SendError> {
        let plain: Vec<Hit> = hits
            .iter()
            .filter(|h| self.routed(h) == Route::Plain)
            .map(as_plain)
            .collect();
        self.plain.check_source(&plain, dst)
    }

    fn check(&self, hit: &Hit) -> Result<(), Refusal> {
        match self.routed(hit) {
            Route::Plain => self.plain.check(&as_plain(hit)),
            Route::Raw => self.raw.check(hit),
        }
    }

    fn send(&mut self, hit: &Hit, dst: Dest) -> Result<(), SendError> {
        match self.routed(hit) {
            Route::Plain => self.plain.send(&as_plain(hit), dst),
            Route::Raw => self.raw.send(hit, dst),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::send::error::RawNeed;
    use crate::send::privilege::Grant;
    use std::cell::RefCell;
    use std::net::{IpAddr, Ipv4Addr};
    use std::rc::Rc;

    const DST: Dest = Dest {
        ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
        scope_id: 0,
    };

    type Log = Rc<RefCell<Vec<(Route, Hit)>>>;

    /// Records what it is asked to send; checks as the real sender of its route does.
    struct Stand {
        route: Route,
        privilege: Privilege,
        log: Log,
    }

    impl Sender for Stand {
        fn check(&self, hit: &Hit) -> Result<(), Refusal> {
            match self.route {
                Route::Plain => PlainSender::new().check(hit),
                Route::Raw => self.privilege.check_raw(hit),
            }
        }

        fn send(&mut self, hit: &Hit, _dst: Dest) -> Result<(), SendError> {
            self.check(hit)?;
            self.log.borrow_mut().push((self.route, *hit));
            Ok(())
        }

        fn route(&self, _hit: &Hit) -> Route {
            self.route
        }
    }

    fn sender(privilege: Privilege, raw_tcp: bool) -> (KnockSender<Stand, Stand>, Log) {
        let log = Log::default();
        let stand = |route| Stand {
            route,
            privilege,
            log: Rc::clone(&log),
        };
        (
            KnockSender::with_senders(stand(Route::Plain), stand(Route::Raw), raw_tcp),
            log,
        )
    }

    fn hit(s: &str) -> Hit {
        Hit::parse(s, Proto::Tcp).unwrap()
    }

    const LINUX_USER: Privilege = Privilege::Missing(Grant::RootOrCapNetRaw);
    const WINDOWS: Privilege =
        Privilege::Unsupported("Windows does not send TCP through raw sockets");

    #[test]
    fn routes() {
        use Route::{Plain, Raw};
        // (hit, raw_tcp, route with raw privilege, route without)
        let table: &[(&str, bool, Route, Route)] = &[
            ("7000", false, Plain, Plain),
            ("7000:udp", false, Plain, Plain),
            ("tcp:7000:i", false, Plain, Plain),
            ("7000:tcp:fin", false, Raw, Raw),
            ("tcp:110:x", false, Raw, Raw),
            ("tcp:110:n", false, Raw, Raw),
            ("tcp:110:up", false, Raw, Raw),
            ("7000:tcp:syn+ack", false, Raw, Raw),
            // A lone SYN goes raw when it can, and through connect when it cannot.
            ("7000:tcp:syn", false, Raw, Plain),
            ("tcp:7000:s", false, Raw, Plain),
            // --raw: every TCP hit raw, whatever the privilege; UDP stays plain.
            ("7000", true, Raw, Raw),
            ("tcp:7000:i", true, Raw, Raw),
            ("7000:tcp:syn", true, Raw, Raw),
            ("7000:tcp:fin", true, Raw, Raw),
            ("7000:udp", true, Plain, Plain),
        ];
        for &(h, raw_tcp, with, without) in table {
            let h = hit(h);
            assert_eq!(
                sender(Privilege::Raw, raw_tcp).0.route(&h),
                with,
                "{h} {raw_tcp}"
            );
            for p in [LINUX_USER, WINDOWS] {
                assert_eq!(
                    sender(p, raw_tcp).0.route(&h),
                    without,
                    "{h} {raw_tcp} {p:?}"
                );
            }
        }
    }

    #[test]
    fn sends_through_the_routed_sender() {
        let (mut s, log) = sender(LINUX_USER, false);
        for h in ["7000", "8000:udp", "9000:tcp:syn", "tcp:1:i"] {
            s.check(&hit(h)).unwrap();
            s.send(&hit(h), DST).unwrap();
        }
        assert_eq!(
            *log.borrow(),
            [
                (Route::Plain, Hit::tcp(7000)),
                (Route::Plain, Hit::udp(8000)),
                // The written SYN reaches the plain sender as the plain hit it equals.
                (Route::Plain, Hit::tcp(9000)),
                (Route::Plain, hit("tcp:1:i")),
            ]
        );
        let (mut s, log) = sender(Privilege::Raw, true);
        for h in ["7000", "8000:udp", "9000:tcp:fin+psh"] {
            s.send(&hit(h), DST).unwrap();
        }
        assert_eq!(
            *log.borrow(),
            [
                (Route::Raw, Hit::tcp(7000)),
                (Route::Plain, Hit::udp(8000)),
                (Route::Raw, hit("9000:tcp:fin+psh")),
            ]
        );
    }

    #[test]
    fn refuses_raw_hits_without_privilege() {
        let (s, _) = sender(LINUX_USER, false);
        assert_eq!(
            s.check(&hit("7000:tcp:fin")),
            Err(Refusal::NoPrivilege {
                need: RawNeed::ExactFlags,
                grant: Grant::RootOrCapNetRaw
            })
        );
        assert_eq!(s.check(&hit("7000")), Ok(()));
        let (s, _) = sender(LINUX_USER, true);
        assert_eq!(
            s.check(&hit("7000")),
            Err(Refusal::NoPrivilege {
                need: RawNeed::RawMode,
                grant: Grant::RootOrCapNetRaw
            })
        );
        assert_eq!(s.check(&hit("8000:udp")), Ok(()));
        let (mut s, log) = sender(WINDOWS, false);
        assert_eq!(
            s.check(&hit("7000:tcp:fin+psh")).unwrap_err().to_string(),
            "exact TCP flags need a raw socket, but Windows does not send TCP through raw sockets"
        );
        assert!(matches!(
            s.send(&hit("7000:tcp:fin+psh"), DST),
            Err(SendError::Refused(Refusal::Unsupported {
                need: RawNeed::ExactFlags,
                ..
            }))
        ));
        assert!(log.borrow().is_empty());
    }

    #[test]
    fn options_reach_both_senders() {
        let s = KnockSender::new(
            SendOptions {
                raw_tcp: true,
                source_port: Some(40000),
            },
            LINUX_USER,
        );
        assert_eq!(s.route(&Hit::tcp(7000)), Route::Raw);
        // Both the plain and the raw sender got the port.
        let text = format!("{s:?}");
        assert_eq!(
            text.matches("source_port: Some(40000)").count(),
            2,
            "{text}"
        );
    }
}
