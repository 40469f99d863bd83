//! The `--dry-run --json` document. Its shape is a promise: later features add hits from
//! other sources, never other keys' meanings.

use serde::{Deserialize, Serialize};

use knock_core::hit::Hit;
use knock_core::send::{Refusal, Route, SendError, Sender};

use crate::connect::Connect;
use crate::execute::AtHit;
use crate::plan::Plan;

/// `{"host": "...", "address": "192.0.2.2", "delay_ms": 0, "hits": [...]}`, and
/// `"wait": {...}` when the knock would be followed by a wait.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DryRun {
    /// HOST as written.
    pub host: String,
    /// The address every hit would go to, with its zone (`fe80::1%eth0`).
    pub address: String,
    /// The pause between two hits, in milliseconds.
    pub delay_ms: u64,
    pub hits: Vec<JsonHit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<JsonWait>,
}

/// `{"port": 22, "timeout_ms": 10000, "retries": 2, "proxy": false}`: `--wait` or
/// `--proxy` (`proxy: true`) on `address`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct JsonWait {
    pub port: u16,
    pub timeout_ms: u64,
    /// Knocks sent again at most, at equal intervals of the timeout.
    pub retries: u32,
    /// Whether stdin and stdout would be relayed over the connection.
    pub proxy: bool,
}

impl From<&Connect> for JsonWait {
    fn from(c: &Connect) -> JsonWait {
        JsonWait {
            port: c.port,
            timeout_ms: u64::try_from(c.schedule.timeout.as_millis()).unwrap_or(u64::MAX),
            retries: c.schedule.retries,
            proxy: c.proxy,
        }
    }
}

/// `{"port": 7000, "proto": "tcp", "flags": ["syn"], "raw": false, "refused": null}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct JsonHit {
    pub port: u16,
    /// `tcp` or `udp`.
    pub proto: String,
    /// The flags put on the wire, by name in header bit order; `[]` for UDP.
    pub flags: Vec<String>,
    /// Whether the hit goes out through a raw socket (built whole by knock).
    pub raw: bool,
    /// Why a real run would refuse this hit, and so send nothing; `null` when it would not.
    pub refused: Option<String>,
}

impl JsonHit {
    /// The hit as it goes on the wire, without a route or refusal.
    fn new(hit: &Hit) -> JsonHit {
        JsonHit {
            port: hit.port,
            proto: hit.proto.as_str().to_string(),
            flags: hit.wire_flags().names().map(str::to_string).collect(),
            raw: false,
            refused: None,
        }
    }
}

impl DryRun {
    /// The document for `plan`: each hit with the route `sender` gives it and the reason a
    /// real run would refuse it (its own refusal, or for a hit that binds the source port,
    /// why that port cannot be bound).
    pub(crate) fn new(
        plan: &Plan,
        sender: &dyn Sender,
        refused: &[AtHit<Refusal>],
        source: Option<&SendError>,
    ) -> DryRun {
        let hits = plan
            .hits
            .iter()
            .enumerate()
            .map(|(i, hit)| {
                let route = sender.route(hit);
                let own = refused.iter().find(|r| r.index == i + 1);
                let refusal = match (own, source) {
                    (Some(r), _) => Some(r.source.to_string()),
                    (None, Some(e)) if route == Route::Plain => Some(format!("--source-port: {e}")),
                    _ => None,
                };
                JsonHit {
                    raw: route == Route::Raw,
                    refused: refusal,
                    ..JsonHit::new(hit)
                }
            })
            .collect();
        DryRun {
            host: plan.host.clone(),
            address: plan.addr.to_string(),
            delay_ms: u64::try_from(plan.delay.as_millis()).unwrap_or(u64::MAX),
            hits,
            wait: plan.connect.as_ref().map(JsonWait::from),
        }
    }

    /// One line of JSON.
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).expect("plain data always serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execute::refusals;
    use crate::execute::testing::Recorder;
    use crate::plan::Mode;
    use knock_core::hit::{Proto, parse_sequence};
    use knock_core::send::{Grant, KnockSender, Privilege};
    use std::time::Duration;

    fn plan(host: &str, addr: &str, hits: &str) -> Plan {
        Plan {
            host: host.into(),
            addr: crate::resolve::Address::from(addr.parse::<std::net::IpAddr>().unwrap()),
            hits: parse_sequence(hits, Proto::Tcp).unwrap(),
            delay: Duration::ZERO,
            verbose: false,
            mode: Mode::DryRunJson,
            send: Default::default(),
            connect: None,
        }
    }

    /// The document for `plan` as a process with `privilege` would print it.
    fn doc_with(plan: &Plan, privilege: Privilege, source: Option<&SendError>) -> DryRun {
        let plain = Recorder::default();
        let raw = plain.raw(privilege);
        let sender = KnockSender::with_senders(plain, raw, plan.send.raw_tcp);
        DryRun::new(plan, &sender, &refusals(plan, &sender), source)
    }

    fn doc(plan: &Plan) -> DryRun {
        doc_with(plan, Privilege::Raw, None)
    }

    #[test]
    fn shape_is_pinned() {
        let mut p = plan("dual.test", "192.0.2.2", "7000,8000:udp,9000:tcp:fin");
        p.delay = Duration::from_millis(250);
        assert_eq!(
            doc(&p).to_json(),
            r#"{"host":"dual.test","address":"192.0.2.2","delay_ms":250,"hits":[{"port":7000,"proto":"tcp","flags":["syn"],"raw":false,"refused":null},{"port":8000,"proto":"udp","flags":[],"raw":false,"refused":null},{"port":9000,"proto":"tcp","flags":["fin"],"raw":true,"refused":null}]}"#
        );
    }

    #[test]
    fn each_hit_says_whether_it_goes_raw_and_why_a_real_run_would_refuse_it() {
        let p = plan("h", "192.0.2.2", "7000,8000:tcp:fin,9000:tcp:syn,10000:udp");
        let user = Privilege::Missing(Grant::RootOrCapNetRaw);
        let d = doc_with(&p, user, None);
        let routes: Vec<(bool, Option<&str>)> = d
            .hits
            .iter()
            .map(|h| (h.raw, h.refused.as_deref()))
            .collect();
        assert_eq!(
            routes,
            [
                (false, None),
                (
                    true,
                    Some("exact TCP flags need a raw socket, which needs root or CAP_NET_RAW")
                ),
                // A lone SYN goes through connect without the privilege.
                (false, None),
                (false, None),
            ]
        );
        // With the privilege, the written SYN goes raw; under --raw every TCP hit does.
        let d = doc_with(&p, Privilege::Raw, None);
        let raw: Vec<bool> = d.hits.iter().map(|h| h.raw).collect();
        assert_eq!(raw, [false, true, true, false]);
        let mut all_raw = p.clone();
        all_raw.send.raw_tcp = true;
        let raw: Vec<bool> = doc(&all_raw).hits.iter().map(|h| h.raw).collect();
        assert_eq!(raw, [true, true, true, false]);
        // A source port that cannot be bound: every hit that binds it says so.
        let denied = SendError::Refused(Refusal::SourcePort {
            port: 80,
            ways: &[],
        });
        let d = doc_with(&p, Privilege::Raw, Some(&denied));
        let refused: Vec<Option<&str>> = d.hits.iter().map(|h| h.refused.as_deref()).collect();
        let why = Some("--source-port: source port 80 cannot be bound: permission denied");
        assert_eq!(refused, [why, None, None, why]);
    }

    #[test]
    fn flags_are_wire_flags_in_header_bit_order() {
        let d = doc(&plan(
            "h",
            "2001:db8::2",
            "1:tcp:psh+fin,tcp:2:x,tcp:3:n,tcp:4:i,5:tcp:cwr+ece",
        ));
        let flags: Vec<Vec<String>> = d.hits.iter().map(|h| h.flags.clone()).collect();
        assert_eq!(
            flags,
            [
                vec!["fin", "psh"],
                vec!["fin", "syn", "rst", "psh", "ack", "urg"],
                vec![],
                vec!["syn"],
                vec!["ece", "cwr"],
            ]
        );
        assert!(d.to_json().contains(r#""address":"2001:db8::2""#));
    }

    #[test]
    fn a_wait_adds_its_own_key() {
        let mut p = plan("h", "192.0.2.2", "7000");
        p.connect = Some(Connect {
            port: 22,
            proxy: true,
            schedule: crate::connect::Schedule {
                timeout: Duration::from_millis(2500),
                retries: 1,
            },
        });
        assert_eq!(
            doc(&p).to_json(),
            r#"{"host":"h","address":"192.0.2.2","delay_ms":0,"hits":[{"port":7000,"proto":"tcp","flags":["syn"],"raw":false,"refused":null}],"wait":{"port":22,"timeout_ms":2500,"retries":1,"proxy":true}}"#
        );
    }

    #[test]
    fn round_trips() {
        let d = doc(&plan("h", "192.0.2.2", "7000,8000:udp"));
        let back: DryRun = serde_json::from_str(&d.to_json()).unwrap();
        assert_eq!(back, d);
    }
}
