//! `TraceContext`: the `traceparent`/`tracestate` parsing and processing
//! model of W3C Trace Context, case by case and by property.

use baton_http::trace::{TraceContext, TraceError};
use proptest::prelude::*;

const TP: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const TRACE_ID: [u8; 16] = [
    0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c,
];
const PARENT_ID: [u8; 8] = [0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31];

fn parse(tp: &str) -> Result<TraceContext, TraceError> {
    TraceContext::parse(tp, None)
}

fn tracestate(ts: &str) -> String {
    TraceContext::parse(TP, Some(ts))
        .expect("a valid traceparent")
        .tracestate()
        .to_owned()
}

#[test]
fn spec_examples() {
    let tc = parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
    assert_eq!(tc.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(tc.parent_id_hex(), "00f067aa0ba902b7");
    assert!(tc.sampled());
    let tc = parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap();
    assert!(!tc.sampled());
    assert_eq!(tc.tracestate(), "");

    let tc = TraceContext::parse(TP, Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")).unwrap();
    assert_eq!(tc.trace_id(), TRACE_ID);
    assert_eq!(tc.parent_id(), PARENT_ID);
    assert_eq!(tc.tracestate(), "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
    assert_eq!(tc.traceparent(), TP);
}

#[test]
fn version() {
    let rest = "-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    assert_eq!(
        parse(&format!("ff{rest}")),
        Err(TraceError::ForbiddenVersion)
    );
    for version in [".0", "0.", "0", "000", "0000", "0A", "FF", "", "-"] {
        assert_eq!(
            parse(&format!("{version}{rest}")),
            Err(TraceError::Version),
            "{version:?}"
        );
    }
    assert_eq!(parse(""), Err(TraceError::Version));
    assert_eq!(parse("00"), Err(TraceError::Version));
    assert_eq!(parse("00-"), Err(TraceError::TooShort));
}

#[test]
fn version_00_is_exact() {
    assert_eq!(parse(&format!("{TP}.")), Err(TraceError::TrailingData));
    assert_eq!(parse(&format!("{TP}-")), Err(TraceError::TrailingData));
    assert_eq!(
        parse(&format!("{TP}-what-the-future-will-be-like")),
        Err(TraceError::TrailingData)
    );
    assert_eq!(parse(&format!("{TP}1")), Err(TraceError::TrailingData));
    assert_eq!(parse(&TP[..54]), Err(TraceError::TooShort));
}

#[test]
fn future_versions_are_read_as_far_as_00_goes() {
    let body = &TP[2..];
    for version in ["01", "cc", "fe"] {
        let tc = parse(&format!("{version}{body}")).unwrap();
        assert_eq!(tc.trace_id(), TRACE_ID);
        assert_eq!(tc.parent_id(), PARENT_ID);
        assert!(tc.sampled());
        assert_eq!(tc.traceparent(), TP, "written back as version 00");

        let tc = parse(&format!("{version}{body}-what-the-future-will-be-like")).unwrap();
        assert_eq!(tc.trace_id(), TRACE_ID);
        assert_eq!(
            parse(&format!("{version}{body}-")).unwrap().trace_id(),
            TRACE_ID
        );

        assert_eq!(
            parse(&format!("{version}{body}.what-the-future-will-be-like")),
            Err(TraceError::Flags)
        );
        assert_eq!(parse(&format!("{version}{body}1")), Err(TraceError::Flags));
        assert_eq!(
            parse(&format!("{version}{}", &body[..52])),
            Err(TraceError::TooShort)
        );
    }
    // A longer future field layout that breaks version 00's positions.
    assert_eq!(
        parse("cc-0af7651916cd43dd8448eb211c80319c00-b7ad6b7169203331-01"),
        Err(TraceError::TraceId)
    );
}

#[test]
fn trace_id() {
    assert_eq!(
        parse("00-00000000000000000000000000000000-b7ad6b7169203331-01"),
        Err(TraceError::ZeroTraceId)
    );
    for tp in [
        "00-.af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319.-b7ad6b7169203331-01",
        "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c0-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c8031-b7ad6b7169203331-01xx",
    ] {
        assert_eq!(parse(tp), Err(TraceError::TraceId), "{tp}");
    }
    assert_eq!(
        parse("00-0af7651916cd43dd8448eb211c80319-b7ad6b7169203331-01"),
        Err(TraceError::TooShort)
    );
}

#[test]
fn parent_id() {
    assert_eq!(
        parse("00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01"),
        Err(TraceError::ZeroParentId)
    );
    for tp in [
        "00-0af7651916cd43dd8448eb211c80319c-.7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333.-01",
        "00-0af7651916cd43dd8448eb211c80319c-B7AD6B7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b71692033310-01",
    ] {
        assert_eq!(parse(tp), Err(TraceError::ParentId), "{tp}");
    }
    assert_eq!(
        parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01"),
        Err(TraceError::TooShort)
    );
}

#[test]
fn flags() {
    for flags in [".0", "0.", "0A", "FF", "g0"] {
        let tp = format!("{}{flags}", &TP[..53]);
        assert_eq!(parse(&tp), Err(TraceError::Flags), "{tp}");
    }
    assert_eq!(
        parse(&format!("{}001", &TP[..53])),
        Err(TraceError::TrailingData)
    );
    assert_eq!(parse(&format!("{}1", &TP[..53])), Err(TraceError::TooShort));
}

#[test]
fn only_known_flags_are_kept() {
    let with = |flags: &str| parse(&format!("{}{flags}", &TP[..53])).unwrap();
    assert_eq!(with("00").flags(), 0);
    assert!(!with("00").sampled());
    assert!(with("01").sampled());
    assert!(!with("01").random_trace_id());
    assert!(with("02").random_trace_id());
    assert!(!with("02").sampled());
    assert_eq!(with("03").flags(), 0x03);
    assert_eq!(with("ff").flags(), 0x03);
    assert_eq!(with("fd").flags(), 0x01);
    assert!(with("ff").traceparent().ends_with("-03"));
    assert!(with("04").traceparent().ends_with("-00"));
    // Also in a higher version.
    let tc = parse(&format!("cc{}", &with("ff").traceparent()[2..])).unwrap();
    assert_eq!(tc.flags(), 0x03);
}

#[test]
fn ows_around_the_header_is_ignored() {
    for tp in [
        format!(" {TP}"),
        format!("\t{TP}"),
        format!("{TP} "),
        format!("{TP}\t"),
        format!("\t {TP} \t"),
    ] {
        assert_eq!(parse(&tp).unwrap().traceparent(), TP, "{tp:?}");
    }
    // Other whitespace is not OWS.
    assert!(parse(&format!("{TP}\n")).is_err());
    assert!(parse(&format!("\r{TP}")).is_err());
    // Nor is whitespace inside.
    assert!(parse(&TP.replacen('-', " -", 1)).is_err());
}

#[test]
fn tracestate_list() {
    assert_eq!(tracestate(""), "");
    assert_eq!(tracestate(" \t "), "");
    assert_eq!(tracestate(",,"), "");
    assert_eq!(tracestate("foo=1"), "foo=1");
    assert_eq!(tracestate("foo=1,bar=2"), "foo=1,bar=2");
    assert_eq!(
        tracestate("foo=1 \t , \t bar=2, \t baz=3"),
        "foo=1,bar=2,baz=3"
    );
    assert_eq!(tracestate("\t foo=1 \t"), "foo=1");
    assert_eq!(tracestate(",foo=1,,  ,bar=2,"), "foo=1,bar=2");
    // Combined headers, one of them empty.
    assert_eq!(tracestate("foo=1,"), "foo=1");
    assert_eq!(tracestate(",foo=1"), "foo=1");
}

#[test]
fn tracestate_invalid_is_dropped_not_the_traceparent() {
    for ts in [
        "foo",
        "=1",
        "foo =1",
        "FOO=1",
        "foo.bar=1",
        "@foo=1,bar=2",
        "_foo=1",
        "foo=bar=baz",
        "foo=,bar=3",
        "foo=1,bar",
        "foo=a\tb",
        "foo=\u{e9}",
        "fo\u{f6}=1",
    ] {
        let tc = TraceContext::parse(TP, Some(ts)).expect("traceparent kept");
        assert_eq!(tc.trace_id(), TRACE_ID);
        assert_eq!(tc.tracestate(), "", "{ts:?}");
    }
}

#[test]
fn tracestate_keys() {
    // The current grammar: a lowercase letter or digit, then up to 255 of
    // lcalpha, DIGIT, `_ - * /` and `@`.
    for ts in [
        "abcdefghijklmnopqrstuvwxyz0123456789_-*/=1",
        "0foo=1",
        "1special=1",
        "foo@=1",
        "foo@bar=1",
        "foo@@bar=1",
        "foo@bar@baz=1",
        "special@vendor=1",
    ] {
        assert_eq!(tracestate(ts), ts);
    }
    let longest = format!("{}=1", "z".repeat(256));
    assert_eq!(tracestate(&longest), longest);
    assert_eq!(tracestate(&format!("{}=1", "z".repeat(257))), "");
    let tenant = format!("{}@{}=1", "t".repeat(241), "v".repeat(14));
    assert_eq!(tracestate(&tenant), tenant);
    assert_eq!(
        tracestate(&format!("{}@{}=1", "t".repeat(241), "v".repeat(15))),
        ""
    );
}

#[test]
fn tracestate_values() {
    let all: String = (0x20u8..=0x2b)
        .chain(0x2d..=0x3c)
        .chain(0x3e..=0x7e)
        .map(char::from)
        .collect();
    assert_eq!(tracestate(&format!("foo={all}")), format!("foo={all}"));
    // Leading spaces belong to the value; trailing ones are OWS.
    assert_eq!(tracestate("foo=  1  "), "foo=  1");
    assert_eq!(tracestate("foo= "), "");
    let longest = format!("foo={}", "v".repeat(256));
    assert_eq!(tracestate(&longest), longest);
    assert_eq!(tracestate(&format!("foo={}", "v".repeat(257))), "");
}

#[test]
fn tracestate_duplicate_keys_keep_the_first() {
    assert_eq!(tracestate("foo=1,foo=1"), "foo=1");
    assert_eq!(tracestate("foo=1,bar=2,foo=3"), "foo=1,bar=2");
}

#[test]
fn tracestate_member_limit() {
    let members = |n: usize| {
        (1..=n)
            .map(|i| format!("k{i}=v{i}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    assert_eq!(tracestate(&members(32)), members(32));
    assert_eq!(tracestate(&format!(",,{},,", members(32))), members(32));
    assert_eq!(
        tracestate(&members(33)),
        "",
        "more than 32 is dropped whole"
    );
    // The size limit is a minimum to propagate: a long list is kept.
    let long: String = (1..=32)
        .map(|i| format!("k{i}={}", "v".repeat(200)))
        .collect::<Vec<_>>()
        .join(",");
    assert!(long.len() > 512);
    assert_eq!(tracestate(&long), long);
}

#[test]
fn no_tracestate_for_an_invalid_traceparent() {
    assert!(TraceContext::parse("00-xyz", Some("foo=1")).is_err());
}

#[test]
fn new_root() {
    let a = TraceContext::new_root(true);
    let b = TraceContext::new_root(false);
    assert!(a.sampled());
    assert!(!b.sampled());
    assert!(a.random_trace_id() && b.random_trace_id());
    assert_ne!(a.trace_id(), b.trace_id());
    assert_ne!(a.trace_id(), [0; 16]);
    assert_ne!(a.parent_id(), [0; 8]);
    assert_eq!(a.tracestate(), "");
    assert!(a.traceparent().ends_with("-03"));
    assert!(b.traceparent().ends_with("-02"));
    assert_eq!(TraceContext::parse(&a.traceparent(), None).unwrap(), a);
}

#[test]
fn child_keeps_the_trace() {
    let parent = TraceContext::parse(TP, Some("congo=t61rcWkgMzE")).unwrap();
    let child = parent.child();
    assert_eq!(child.trace_id(), parent.trace_id());
    assert_eq!(child.flags(), parent.flags());
    assert_eq!(child.tracestate(), "congo=t61rcWkgMzE");
    assert_ne!(child.parent_id(), parent.parent_id());
    assert_ne!(child.parent_id(), [0; 8]);
    assert_ne!(child, parent);
    assert_ne!(child.parent_id(), child.child().parent_id());
}

#[test]
fn display_debug_and_errors() {
    let tc = TraceContext::parse(TP, Some("foo=1")).unwrap();
    assert_eq!(tc.to_string(), "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(
        format!("{tc:?}"),
        "TraceContext { trace_id: 0af7651916cd43dd8448eb211c80319c, \
         parent_id: b7ad6b7169203331, flags: 01, tracestate: \"foo=1\" }"
    );
    let err: Box<dyn std::error::Error> = Box::new(parse("").unwrap_err());
    assert!(err.to_string().contains("version"), "{err}");
    assert!(
        parse(&TP.replace("b7ad6b7169203331", "0000000000000000"))
            .unwrap_err()
            .to_string()
            .contains("parent-id")
    );
}

/// A valid tracestate list-member from the grammar.
fn member() -> impl Strategy<Value = (String, String)> {
    let key = "[a-z0-9][a-z0-9_*/@-]{0,20}";
    let value = "[ -+--<>-~]{0,20}[!-+--<>-~]";
    (key, value)
}

proptest! {
    #[test]
    fn round_trip(
        trace_id in any::<[u8; 16]>().prop_filter("non-zero", |id| *id != [0; 16]),
        parent_id in any::<[u8; 8]>().prop_filter("non-zero", |id| *id != [0; 8]),
        flags in 0u8..4,
        members in proptest::collection::vec(member(), 0..=32),
        version in "[0-9a-e][0-9a-f]|f[0-9a-e]",
    ) {
        let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let mut seen = std::collections::HashSet::new();
        let list = members
            .iter()
            .filter(|(k, _)| seen.insert(k.clone()))
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" , ");
        let header = format!("{version}-{}-{}-{flags:02x}", hex(&trace_id), hex(&parent_id));
        let tc = TraceContext::parse(&header, Some(&list)).unwrap();
        prop_assert_eq!(tc.trace_id(), trace_id);
        prop_assert_eq!(tc.parent_id(), parent_id);
        prop_assert_eq!(tc.flags(), flags);
        prop_assert_eq!(tc.tracestate(), list.replace(" , ", ","));
        let again = TraceContext::parse(&tc.traceparent(), Some(tc.tracestate())).unwrap();
        prop_assert_eq!(&again, &tc);
        let child = tc.child();
        prop_assert_eq!(TraceContext::parse(&child.traceparent(), Some(child.tracestate())).unwrap(), child);
    }

    #[test]
    fn never_panics(tp in "\\PC{0,80}", ts in "\\PC{0,80}") {
        let _ = TraceContext::parse(&tp, Some(&ts));
    }

    #[test]
    fn one_changed_character_of_version_00_is_rejected_or_still_valid(
        pos in 0usize..55,
        c in proptest::char::any(),
    ) {
        let mut tp: Vec<char> = TP.chars().collect();
        // A character "changed" to itself (a delimiter to '-') is no change.
        let unchanged = tp[pos] == c;
        tp[pos] = c;
        let tp: String = tp.into_iter().collect();
        let hex = c.is_ascii_digit() || ('a'..='f').contains(&c);
        let delimiter = [2, 35, 52].contains(&pos);
        match parse(&tp) {
            // Only a lowercase hex digit in a hex field keeps it valid.
            Ok(tc) => {
                prop_assert!(unchanged || (hex && !delimiter));
                if (3..53).contains(&pos) {
                    prop_assert_eq!(tc.traceparent(), tp);
                }
            }
            Err(_) => prop_assert!(!unchanged && (!hex || delimiter)),
        }
    }
}
