//! The `--dry-run --json` document. Its shape is a promise: later features add hits from
//! other sources, never other keys' meanings.

use serde::{Deserialize, Serialize};

use knock_core::hit::Hit;

use crate::plan::Plan;

/// `{"host": "...", "address": "192.0.2.2", "hits": [...]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DryRun {
    /// HOST as written.
    pub host: String,
    /// The address every hit would go to, with its zone (`fe80::1%eth0`).
    pub address: String,
    pub hits: Vec<JsonHit>,
}

/// `{"port": 7000, "proto": "tcp", "flags": ["syn"]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct JsonHit {
    pub port: u16,
    /// `tcp` or `udp`.
    pub proto: String,
    /// The flags put on the wire, by name in header bit order; `[]` for UDP.
    pub flags: Vec<String>,
}

impl From<&Hit> for JsonHit {
    fn from(hit: &Hit) -> JsonHit {
        JsonHit {
            port: hit.port,
            proto: hit.proto.as_str().to_string(),
            flags: hit.wire_flags().names().map(str::to_string).collect(),
        }
    }
}

impl DryRun {
    pub(crate) fn new(plan: &Plan) -> DryRun {
        DryRun {
            host: plan.host.clone(),
            address: plan.addr.to_string(),
            hits: plan.hits.iter().map(JsonHit::from).collect(),
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
    use crate::plan::Mode;
    use knock_core::hit::{Proto, parse_sequence};
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
        }
    }

    #[test]
    fn shape_is_pinned() {
        let doc = DryRun::new(&plan("dual.test", "192.0.2.2", "7000,8000:udp,9000"));
        assert_eq!(
            doc.to_json(),
            r#"{"host":"dual.test","address":"192.0.2.2","hits":[{"port":7000,"proto":"tcp","flags":["syn"]},{"port":8000,"proto":"udp","flags":[]},{"port":9000,"proto":"tcp","flags":["syn"]}]}"#
        );
    }

    #[test]
    fn flags_are_wire_flags_in_header_bit_order() {
        let doc = DryRun::new(&plan(
            "h",
            "2001:db8::2",
            "1:tcp:psh+fin,tcp:2:x,tcp:3:n,tcp:4:i,5:tcp:cwr+ece",
        ));
        let flags: Vec<Vec<String>> = doc.hits.iter().map(|h| h.flags.clone()).collect();
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
        assert!(doc.to_json().contains(r#""address":"2001:db8::2""#));
    }

    #[test]
    fn round_trips() {
        let doc = DryRun::new(&plan("h", "192.0.2.2", "7000,8000:udp"));
        let back: DryRun = serde_json::from_str(&doc.to_json()).unwrap();
        assert_eq!(back, doc);
    }
}
