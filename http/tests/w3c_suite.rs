//! The W3C Trace Context validation suite (w3c/trace-context `test/test.py`,
//! strict level 2, spec levels 1 and 2), restated against `extract` and
//! `inject`: each case sends the suite's request headers to a "service" that
//! extracts them into a fresh context and injects them into its outgoing
//! call, then checks the outgoing headers as the suite's harness does.

use baton_context::Context;
use baton_http::trace::{extract, inject};
use http::{HeaderMap, HeaderName, HeaderValue};

const TRACE_ID: &str = "12345678901234567890123456789012";
const PARENT_ID: &str = "1234567890123456";

/// What the harness reads back from the service's outgoing call.
struct Outgoing {
    version: String,
    trace_id: String,
    parent_id: String,
    flags: u8,
    /// The `tracestate` list-members, in order.
    tracestate: Vec<(String, String)>,
    tracestate_raw: String,
}

impl Outgoing {
    fn get(&self, key: &str) -> Option<&str> {
        self.tracestate
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The service under test: extract the request's headers in its own context,
/// then inject them into an outgoing call.
fn service(request: &[(&str, &str)]) -> Outgoing {
    let mut headers = HeaderMap::new();
    for (name, value) in request {
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    let out = Context::new().run(|| {
        extract(&headers);
        let mut out = HeaderMap::new();
        inject(&mut out);
        out
    });
    read_outgoing(&out)
}

/// The harness's checks: exactly one traceparent matching
/// `^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$`.
fn read_outgoing(out: &HeaderMap) -> Outgoing {
    let traceparents: Vec<_> = out.get_all("traceparent").iter().collect();
    assert_eq!(traceparents.len(), 1, "expect one traceparent header");
    let traceparent = traceparents[0].to_str().unwrap();
    let fields: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(fields.len(), 4, "{traceparent}");
    let lens: Vec<usize> = fields.iter().map(|f| f.len()).collect();
    assert_eq!(lens, [2, 32, 16, 2], "{traceparent}");
    assert!(
        traceparent
            .bytes()
            .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{traceparent}"
    );
    let mut tracestate = Vec::new();
    let mut raw = Vec::new();
    for value in out.get_all("tracestate") {
        let value = value.to_str().unwrap();
        raw.push(value.to_owned());
        for member in value.split(',') {
            let member = member.trim_matches([' ', '\t']);
            if member.is_empty() {
                continue;
            }
            let (k, v) = member.split_once('=').expect("a valid list-member");
            if !tracestate.iter().any(|(key, _)| key == k) {
                tracestate.push((k.to_owned(), v.to_owned()));
            }
        }
    }
    Outgoing {
        version: fields[0].to_owned(),
        trace_id: fields[1].to_owned(),
        parent_id: fields[2].to_owned(),
        flags: u8::from_str_radix(fields[3], 16).unwrap(),
        tracestate,
        tracestate_raw: raw.join(","),
    }
}

fn tp(flags: &str) -> String {
    format!("00-{TRACE_ID}-{PARENT_ID}-{flags}")
}

fn continued(request: &[(&str, &str)]) -> Outgoing {
    let out = service(request);
    assert_eq!(
        out.trace_id, TRACE_ID,
        "expected the trace to continue: {request:?}"
    );
    out
}

fn restarted(request: &[(&str, &str)]) -> Outgoing {
    let out = service(request);
    assert_ne!(out.trace_id, TRACE_ID, "expected a new trace: {request:?}");
    assert_ne!(out.trace_id, "0".repeat(32));
    out
}

#[test]
fn both_traceparent_and_tracestate_missing() {
    let out = service(&[]);
    assert_eq!(out.version, "00");
    assert_ne!(out.trace_id, "0".repeat(32));
    assert_ne!(out.parent_id, "0".repeat(16));
    assert!(out.tracestate.is_empty());
}

#[test]
fn traceparent_included_tracestate_missing() {
    let out = continued(&[("traceparent", &tp("01"))]);
    assert_ne!(out.parent_id, PARENT_ID);
    assert_eq!(out.flags & 1, 1, "sampled flag kept");
}

#[test]
fn traceparent_duplicated() {
    let out = service(&[
        (
            "traceparent",
            "00-12345678901234567890123456789011-1234567890123456-01",
        ),
        (
            "traceparent",
            "00-12345678901234567890123456789012-1234567890123456-01",
        ),
    ]);
    assert_ne!(out.trace_id, "12345678901234567890123456789011");
    assert_ne!(out.trace_id, "12345678901234567890123456789012");
}

#[test]
fn traceparent_header_name() {
    restarted(&[("trace-parent", &tp("01"))]);
    restarted(&[("trace.parent", &tp("01"))]);
}

#[test]
fn traceparent_header_name_valid_casing() {
    continued(&[("TraceParent", &tp("01"))]);
    continued(&[("TrAcEpArEnT", &tp("01"))]);
    continued(&[("TRACEPARENT", &tp("01"))]);
}

#[test]
fn traceparent_version_0x00() {
    restarted(&[("traceparent", &format!("{}.", tp("01")))]);
    restarted(&[(
        "traceparent",
        &format!("{}-what-the-future-will-be-like", tp("01")),
    )]);
}

#[test]
fn traceparent_version_0xcc() {
    let out = continued(&[("traceparent", &format!("cc-{TRACE_ID}-{PARENT_ID}-01"))]);
    assert_eq!(out.version, "00", "written in the highest known version");
    continued(&[(
        "traceparent",
        &format!("cc-{TRACE_ID}-{PARENT_ID}-01-what-the-future-will-be-like"),
    )]);
    restarted(&[(
        "traceparent",
        &format!("cc-{TRACE_ID}-{PARENT_ID}-01.what-the-future-will-be-like"),
    )]);
}

#[test]
fn traceparent_version_0xff() {
    restarted(&[("traceparent", &format!("ff-{TRACE_ID}-{PARENT_ID}-01"))]);
}

#[test]
fn traceparent_version_illegal_characters() {
    restarted(&[("traceparent", &format!(".0-{TRACE_ID}-{PARENT_ID}-01"))]);
    restarted(&[("traceparent", &format!("0.-{TRACE_ID}-{PARENT_ID}-01"))]);
}

#[test]
fn traceparent_version_too_long() {
    restarted(&[("traceparent", &format!("000-{TRACE_ID}-{PARENT_ID}-01"))]);
    restarted(&[("traceparent", &format!("0000-{TRACE_ID}-{PARENT_ID}-01"))]);
}

#[test]
fn traceparent_version_too_short() {
    restarted(&[("traceparent", &format!("0-{TRACE_ID}-{PARENT_ID}-01"))]);
}

#[test]
fn traceparent_trace_id_all_zero() {
    let out = service(&[(
        "traceparent",
        "00-00000000000000000000000000000000-1234567890123456-01",
    )]);
    assert_ne!(out.trace_id, "0".repeat(32));
}

#[test]
fn traceparent_trace_id_illegal_characters() {
    for tp in [
        "00-.2345678901234567890123456789012-1234567890123456-01",
        "00-1234567890123456789012345678901.-1234567890123456-01",
    ] {
        let out = service(&[("traceparent", tp)]);
        assert!(!out.trace_id.contains(&tp[4..34]), "{tp}");
    }
}

#[test]
fn traceparent_trace_id_too_long() {
    let out = service(&[(
        "traceparent",
        "00-123456789012345678901234567890123-1234567890123456-01",
    )]);
    assert_ne!(out.trace_id, "12345678901234567890123456789012");
    assert_ne!(out.trace_id, "23456789012345678901234567890123");
}

#[test]
fn traceparent_trace_id_too_short() {
    let out = service(&[(
        "traceparent",
        "00-1234567890123456789012345678901-1234567890123456-01",
    )]);
    assert!(!out.trace_id.starts_with("1234567890123456789012345678901"));
}

#[test]
fn traceparent_parent_id_all_zero() {
    restarted(&[("traceparent", &format!("00-{TRACE_ID}-0000000000000000-01"))]);
}

#[test]
fn traceparent_parent_id_illegal_characters() {
    restarted(&[("traceparent", &format!("00-{TRACE_ID}-.234567890123456-01"))]);
    restarted(&[("traceparent", &format!("00-{TRACE_ID}-123456789012345.-01"))]);
}

#[test]
fn traceparent_parent_id_too_long() {
    restarted(&[(
        "traceparent",
        &format!("00-{TRACE_ID}-12345678901234567-01"),
    )]);
}

#[test]
fn traceparent_parent_id_too_short() {
    restarted(&[("traceparent", &format!("00-{TRACE_ID}-123456789012345-01"))]);
}

#[test]
fn traceparent_trace_flags_illegal_characters() {
    restarted(&[("traceparent", &tp(".0"))]);
    restarted(&[("traceparent", &tp("0."))]);
}

#[test]
fn traceparent_trace_flags_too_long() {
    restarted(&[("traceparent", &tp("001"))]);
}

#[test]
fn traceparent_trace_flags_too_short() {
    restarted(&[("traceparent", &tp("1"))]);
}

#[test]
fn traceparent_ows_handling() {
    continued(&[("traceparent", &format!(" {}", tp("01")))]);
    continued(&[("traceparent", &format!("\t{}", tp("01")))]);
    continued(&[("traceparent", &format!("{} ", tp("01")))]);
    continued(&[("traceparent", &format!("{}\t", tp("01")))]);
    continued(&[("traceparent", &format!("\t {} \t", tp("01")))]);
}

#[test]
fn tracestate_included_traceparent_missing() {
    let one = service(&[("tracestate", "foo=1")]);
    let two = service(&[("tracestate", "foo=1,bar=2")]);
    assert_eq!(one.tracestate.len(), two.tracestate.len());
    assert!(
        one.tracestate.is_empty(),
        "a restarted trace drops tracestate"
    );
}

#[test]
fn tracestate_included_traceparent_included() {
    let out = continued(&[("traceparent", &tp("00")), ("tracestate", "foo=1,bar=2")]);
    assert_eq!(out.get("foo"), Some("1"));
    assert_eq!(out.get("bar"), Some("2"));
}

#[test]
fn tracestate_header_name() {
    let out = continued(&[("traceparent", &tp("00")), ("trace-state", "foo=1")]);
    assert_eq!(out.get("foo"), None);
    let out = continued(&[("traceparent", &tp("00")), ("trace.state", "foo=1")]);
    assert_eq!(out.get("foo"), None);
}

#[test]
fn tracestate_header_name_valid_casing() {
    for name in ["TraceState", "TrAcEsTaTe", "TRACESTATE"] {
        let out = continued(&[("traceparent", &tp("00")), (name, "foo=1")]);
        assert_eq!(out.get("foo"), Some("1"), "{name}");
    }
}

#[test]
fn tracestate_empty_header() {
    let out = continued(&[("traceparent", &tp("00")), ("tracestate", "")]);
    assert!(out.tracestate.is_empty());
    assert_eq!(out.tracestate_raw, "", "no empty tracestate header is sent");
    let out = continued(&[
        ("traceparent", &tp("00")),
        ("tracestate", "foo=1"),
        ("tracestate", ""),
    ]);
    assert_eq!(out.get("foo"), Some("1"));
    let out = continued(&[
        ("traceparent", &tp("00")),
        ("tracestate", ""),
        ("tracestate", "foo=1"),
    ]);
    assert_eq!(out.get("foo"), Some("1"));
}

#[test]
fn tracestate_multiple_headers_different_keys() {
    let out = continued(&[
        ("traceparent", &tp("00")),
        ("tracestate", "foo=1,bar=2"),
        ("tracestate", "rojo=1,congo=2"),
        ("tracestate", "baz=3"),
    ]);
    let s = &out.tracestate_raw;
    let at = |m: &str| s.find(m).unwrap_or_else(|| panic!("{m} missing from {s}"));
    assert!(at("foo=1") < at("bar=2"));
    assert!(at("bar=2") < at("rojo=1"));
    assert!(at("rojo=1") < at("congo=2"));
    assert!(at("congo=2") < at("baz=3"));
}

#[test]
fn tracestate_duplicated_keys() {
    // The suite accepts duplicates passed on or dropped; this
    // implementation keeps the first.
    let out = continued(&[("traceparent", &tp("00")), ("tracestate", "foo=1,foo=1")]);
    assert_eq!(out.tracestate_raw, "foo=1");
    let out = continued(&[("traceparent", &tp("00")), ("tracestate", "foo=1,foo=2")]);
    assert_eq!(out.tracestate_raw, "foo=1");
    let out = continued(&[
        ("traceparent", &tp("00")),
        ("tracestate", "foo=1"),
        ("tracestate", "foo=1"),
    ]);
    assert_eq!(out.tracestate_raw, "foo=1");
    let out = continued(&[
        ("traceparent", &tp("00")),
        ("tracestate", "foo=1"),
        ("tracestate", "foo=2"),
    ]);
    assert_eq!(out.tracestate_raw, "foo=1");
}

#[test]
fn tracestate_all_allowed_characters() {
    let key_without_vendor = "abcdefghijklmnopqrstuvwxyz0123456789_-*/";
    let key_with_vendor = format!("{key_without_vendor}@a-z0-9_-*/");
    let value: String = (0x20u8..=0x2b)
        .chain(0x2d..=0x3c)
        .chain(0x3e..=0x7e)
        .map(char::from)
        .collect();
    for key in [key_without_vendor, &key_with_vendor] {
        let member = format!("{key}={value}");
        let out = continued(&[("traceparent", &tp("00")), ("tracestate", &member)]);
        assert_eq!(out.get(key), Some(value.as_str()));
    }
}

#[test]
fn tracestate_ows_handling() {
    for header in [
        "foo=1 \t , \t bar=2, \t baz=3",
        "foo=1\t \t,\t \tbar=2,\t \tbaz=3",
    ] {
        let out = continued(&[("traceparent", &tp("00")), ("tracestate", header)]);
        assert_eq!(out.get("foo"), Some("1"));
        assert_eq!(out.get("bar"), Some("2"));
        assert_eq!(out.get("baz"), Some("3"));
    }
    for header in [" foo=1", "\tfoo=1", "foo=1 ", "foo=1\t", "\t foo=1 \t"] {
        let out = continued(&[("traceparent", &tp("00")), ("tracestate", header)]);
        assert_eq!(out.get("foo"), Some("1"), "{header:?}");
    }
}

#[test]
fn tracestate_key_illegal_characters() {
    for (header, key) in [
        ("foo =1", "foo "),
        ("FOO=1", "FOO"),
        ("foo.bar=1", "foo.bar"),
    ] {
        let out = continued(&[("traceparent", &tp("00")), ("tracestate", header)]);
        assert_eq!(out.get(key), None);
        assert!(out.tracestate.is_empty(), "{header}: dropped whole");
    }
}

#[test]
fn tracestate_key_illegal_vendor_format() {
    // The current key grammar: `@` anywhere after the first character.
    for (header, key) in [
        ("foo@=1,bar=2", "foo@"),
        ("foo@@bar=1,bar=2", "foo@@bar"),
        ("foo@bar@baz=1,bar=2", "foo@bar@baz"),
    ] {
        let out = continued(&[("traceparent", &tp("00")), ("tracestate", header)]);
        assert_eq!(out.get(key), Some("1"), "{header}");
        assert_eq!(out.get("bar"), Some("2"), "{header}");
    }
    let out = continued(&[("traceparent", &tp("00")), ("tracestate", "@foo=1,bar=2")]);
    assert_eq!(out.get("bar"), None);
}

#[test]
fn tracestate_member_count_limit() {
    let tens: Vec<String> = (0..3)
        .map(|t| {
            (1..=10)
                .map(|i| format!("bar{n:02}={n:02}", n = t * 10 + i))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    let tp = tp("00");
    let out = continued(&[
        ("traceparent", &tp),
        ("tracestate", &tens[0]),
        ("tracestate", &tens[1]),
        ("tracestate", &tens[2]),
        ("tracestate", "bar31=31,bar32=32"),
    ]);
    assert_eq!(out.get("bar01"), Some("01"));
    assert_eq!(out.tracestate.len(), 32);

    let out = continued(&[
        ("traceparent", &tp),
        ("tracestate", &tens[0]),
        ("tracestate", &tens[1]),
        ("tracestate", &tens[2]),
        ("tracestate", "bar31=31,bar32=32,bar33=33"),
    ]);
    assert_eq!(out.get("bar01"), None);
    assert!(out.tracestate.is_empty());
}

#[test]
fn tracestate_key_length_limit() {
    let tp = tp("00");
    for key in [
        "z".repeat(256),
        format!("{}@{}", "t".repeat(241), "v".repeat(14)),
        format!("{}@v", "t".repeat(242)),
        format!("t@{}", "v".repeat(15)),
    ] {
        let member = format!("{key}=1");
        let out = continued(&[
            ("traceparent", &tp),
            ("tracestate", "foo=1"),
            ("tracestate", &member),
        ]);
        assert_eq!(out.get("foo"), Some("1"), "{key}");
        assert_eq!(out.get(&key), Some("1"), "{key}");
    }
    let member = format!("{}=1", "z".repeat(257));
    let out = continued(&[
        ("traceparent", &tp),
        ("tracestate", "foo=1"),
        ("tracestate", &member),
    ]);
    assert_eq!(out.get("foo"), None);
}

#[test]
fn tracestate_value_illegal_characters() {
    let out = continued(&[("traceparent", &tp("00")), ("tracestate", "foo=bar=baz")]);
    assert_eq!(out.get("foo"), None);
    let out = continued(&[("traceparent", &tp("00")), ("tracestate", "foo=,bar=3")]);
    assert_eq!(out.get("foo"), None);
    assert_eq!(out.get("bar"), None);
}

#[test]
fn multiple_requests_with_valid_traceparent() {
    let mut headers = HeaderMap::new();
    headers.insert("traceparent", tp("01").parse().unwrap());
    let outs = Context::new().run(|| {
        extract(&headers);
        (0..3)
            .map(|_| {
                let mut out = HeaderMap::new();
                inject(&mut out);
                read_outgoing(&out)
            })
            .collect::<Vec<_>>()
    });
    let mut parents: Vec<&str> = outs.iter().map(|o| o.parent_id.as_str()).collect();
    assert!(outs.iter().all(|o| o.trace_id == TRACE_ID));
    parents.sort();
    parents.dedup();
    assert_eq!(parents.len(), 3);
}

#[test]
fn multiple_requests_without_traceparent() {
    let outs = Context::new().run(|| {
        extract(&HeaderMap::new());
        (0..3)
            .map(|_| {
                let mut out = HeaderMap::new();
                inject(&mut out);
                read_outgoing(&out)
            })
            .collect::<Vec<_>>()
    });
    let mut parents: Vec<&str> = outs.iter().map(|o| o.parent_id.as_str()).collect();
    parents.sort();
    parents.dedup();
    assert_eq!(parents.len(), 3);
    // extract started one trace; every outgoing call belongs to it.
    assert!(outs.iter().all(|o| o.trace_id == outs[0].trace_id));
}

#[test]
fn multiple_requests_with_illegal_traceparent() {
    let mut headers = HeaderMap::new();
    headers.insert(
        "traceparent",
        "00-00000000000000000000000000000000-1234567890123456-01"
            .parse()
            .unwrap(),
    );
    let outs = Context::new().run(|| {
        extract(&headers);
        (0..3)
            .map(|_| {
                let mut out = HeaderMap::new();
                inject(&mut out);
                read_outgoing(&out)
            })
            .collect::<Vec<_>>()
    });
    assert!(outs.iter().all(|o| o.trace_id != "0".repeat(32)));
    let mut parents: Vec<&str> = outs.iter().map(|o| o.parent_id.as_str()).collect();
    parents.sort();
    parents.dedup();
    assert_eq!(parents.len(), 3);
}

#[test]
fn level2_propagates_random_flag() {
    let out = continued(&[("traceparent", &tp("02"))]);
    assert_ne!(out.parent_id, PARENT_ID);
    assert_eq!(out.flags & 0x02, 0x02, "random flag not set");
}
