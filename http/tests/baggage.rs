//! `Baggage`: the W3C Baggage header, its specification's examples and the
//! reference implementation's cases (w3c/baggage `test/test_baggage.py`).

use baton_http::trace::{Baggage, TraceError};
use proptest::prelude::*;

fn members(b: &Baggage) -> Vec<(&str, &str, &str)> {
    b.iter().collect()
}

#[test]
fn new_is_empty() {
    let b = Baggage::new();
    assert!(b.is_empty());
    assert_eq!(b.len(), 0);
    assert_eq!(b.to_string(), "");
    assert_eq!(b, Baggage::default());
    assert_eq!(Baggage::parse("").unwrap(), b);
}

#[test]
fn spec_example_with_properties() {
    let b = Baggage::parse(
        "key1=value1;property1;property2, key2 = value2, key3=value3; propertyKey=propertyValue",
    )
    .unwrap();
    assert_eq!(
        members(&b),
        [
            ("key1", "value1", "property1;property2"),
            ("key2", "value2", ""),
            ("key3", "value3", "propertyKey=propertyValue"),
        ]
    );
    assert_eq!(
        b.to_string(),
        "key1=value1;property1;property2,key2=value2,key3=value3;propertyKey=propertyValue"
    );
}

#[test]
fn spec_examples_percent_encoding() {
    let b = Baggage::parse("userId=alice,serverNode=DF%2028,isProduction=false").unwrap();
    assert_eq!(b.get("userId"), Some("alice"));
    assert_eq!(b.get("serverNode"), Some("DF 28"));
    assert_eq!(b.get("isProduction"), Some("false"));
    assert_eq!(
        b.to_string(),
        "userId=alice,serverNode=DF%2028,isProduction=false"
    );

    let b = Baggage::parse("userId=Am%C3%A9lie,serverNode=DF%2028,isProduction=false").unwrap();
    assert_eq!(b.get("userId"), Some("Amélie"));
    assert_eq!(
        b.to_string(),
        "userId=Am%C3%A9lie,serverNode=DF%2028,isProduction=false"
    );

    let built = Baggage::new()
        .with("userId", "Amélie")
        .with("serverNode", "DF 28")
        .with("isProduction", "false");
    assert_eq!(built, b);
    assert_eq!(
        built.to_string(),
        "userId=Am%C3%A9lie,serverNode=DF%2028,isProduction=false"
    );
}

#[test]
fn spec_examples_ows_and_multiple_headers() {
    // `baggage: userId =   alice` and `baggage: serverNode = DF%2028, isProduction = false`,
    // combined.
    let b = Baggage::parse("userId =   alice,serverNode = DF%2028, isProduction = false").unwrap();
    assert_eq!(
        members(&b),
        [
            ("userId", "alice", ""),
            ("serverNode", "DF 28", ""),
            ("isProduction", "false", ""),
        ]
    );
}

#[test]
fn reference_parse_simple_and_multiple() {
    let b = Baggage::parse("SomeKey=SomeValue").unwrap();
    assert_eq!(members(&b), [("SomeKey", "SomeValue", "")]);

    let b =
        Baggage::parse("SomeKey=SomeValue;SomeProp,SomeKey2=SomeValue2;ValueProp=PropVal").unwrap();
    assert_eq!(
        members(&b),
        [
            ("SomeKey", "SomeValue", "SomeProp"),
            ("SomeKey2", "SomeValue2", "ValueProp=PropVal"),
        ]
    );

    let b = Baggage::parse(
        "SomeKey \t = \t SomeValue \t ; \t SomeProp \t , \t SomeKey2 \t = \t SomeValue2 \t ; \t ValueProp \t = \t PropVal",
    )
    .unwrap();
    assert_eq!(
        members(&b),
        [
            ("SomeKey", "SomeValue", "SomeProp"),
            ("SomeKey2", "SomeValue2", "ValueProp=PropVal"),
        ]
    );
}

#[test]
fn reference_multiple_equals() {
    let b = Baggage::parse("SomeKey=SomeValue=equals").unwrap();
    assert_eq!(b.get("SomeKey"), Some("SomeValue=equals"));
    assert_eq!(b.to_string(), "SomeKey=SomeValue=equals");
    let b = Baggage::parse("k=v;p=a=b").unwrap();
    assert_eq!(members(&b), [("k", "v", "p=a=b")]);
}

#[test]
fn reference_percent_encoded() {
    // urllib.parse.quote("\t \"';=asdf!@#$%^&*()")
    let encoded = "%09%20%22%27%3B%3Dasdf%21%40%23%24%25%5E%26%2A%28%29";
    let value = "\t \"';=asdf!@#$%^&*()";
    let b = Baggage::parse(&format!("SomeKey={encoded}")).unwrap();
    assert_eq!(b.get("SomeKey"), Some(value));
    // Written back with the characters that must be encoded encoded.
    let written = b.to_string();
    assert_eq!(written, "SomeKey=%09%20%22'%3B=asdf!@#$%25^&*()");
    assert_eq!(Baggage::parse(&written).unwrap(), b);

    let b = Baggage::parse(&format!("SomeKey \t = \t {encoded} \t ")).unwrap();
    assert_eq!(b.get("SomeKey"), Some(value));
}

#[test]
fn reference_properties() {
    let b = Baggage::parse("SomeKey=SomeValue;SomeProp;SecondProp=PropValue").unwrap();
    assert_eq!(
        members(&b),
        [("SomeKey", "SomeValue", "SomeProp;SecondProp=PropValue")]
    );
    let b =
        Baggage::parse("SomeKey=SomeValue;SomeProp;SomeProp=PropValue;SomeProp=AnotherPropValue")
            .unwrap();
    assert_eq!(
        members(&b)[0].2,
        "SomeProp;SomeProp=PropValue;SomeProp=AnotherPropValue"
    );
    let b = Baggage::parse(
        "SomeKey \t = \t SomeValue \t ; \t SomeProp \t ; \t SecondProp \t = \t PropValue",
    )
    .unwrap();
    assert_eq!(
        members(&b),
        [("SomeKey", "SomeValue", "SomeProp;SecondProp=PropValue")]
    );
    // Percent escapes in properties are kept as they came.
    let b = Baggage::parse("SomeKey=SomeValue;ValueProp%20%09%20%3D%20%09%20PropVal").unwrap();
    assert_eq!(members(&b)[0].2, "ValueProp%20%09%20%3D%20%09%20PropVal");
    let b = Baggage::parse("SomeKey=SomeValue;SomePropKey=%09%20%22").unwrap();
    assert_eq!(members(&b)[0].2, "SomePropKey=%09%20%22");
    assert_eq!(b.to_string(), "SomeKey=SomeValue;SomePropKey=%09%20%22");
}

#[test]
fn malformed_is_rejected() {
    for (header, err) in [
        ("key", TraceError::BaggageMember),
        ("key;p=v", TraceError::BaggageMember),
        ("k=v,novalue", TraceError::BaggageMember),
        ("=value", TraceError::BaggageKey),
        ("user id=alice", TraceError::BaggageKey),
        ("k\u{e9}y=v", TraceError::BaggageKey),
        ("(key)=v", TraceError::BaggageKey),
        ("k=v;=p", TraceError::BaggageKey),
        ("k=v;p q", TraceError::BaggageKey),
        ("userId=Amélie", TraceError::BaggageValue),
        ("k=a b", TraceError::BaggageValue),
        ("k=\"quoted\"", TraceError::BaggageValue),
        ("k=back\\slash", TraceError::BaggageValue),
        ("k=v;p=a b", TraceError::BaggageValue),
        ("k=v;", TraceError::BaggageProperty),
        ("k=v;;p", TraceError::BaggageProperty),
    ] {
        assert_eq!(Baggage::parse(header), Err(err), "{header:?}");
        assert_eq!(header.parse::<Baggage>(), Err(err));
    }
}

#[test]
fn empty_members_and_values() {
    let b = Baggage::parse(" , a=1,, \t ,b=2,").unwrap();
    assert_eq!(members(&b), [("a", "1", ""), ("b", "2", "")]);
    let b = Baggage::parse("k=").unwrap();
    assert_eq!(b.get("k"), Some(""));
    assert_eq!(b.to_string(), "k=");
    let b = Baggage::parse("k = ;flag").unwrap();
    assert_eq!(members(&b), [("k", "", "flag")]);
}

#[test]
fn keys_are_tokens_and_case_sensitive() {
    let key = "!#$%&'*+-.^_`|~09azAZ";
    let b = Baggage::parse(&format!("{key}=1,Key=2,key=3")).unwrap();
    assert_eq!(b.get(key), Some("1"));
    assert_eq!(b.get("Key"), Some("2"));
    assert_eq!(b.get("key"), Some("3"));
    assert_eq!(b.get("KEY"), None);
}

#[test]
fn percent_decoding_edge_cases() {
    let b = Baggage::parse("a=50%,b=%zz,c=%4,d=%ff,e=%e2%82%ac,f=%E2%82%AC").unwrap();
    assert_eq!(b.get("a"), Some("50%"));
    assert_eq!(b.get("b"), Some("%zz"));
    assert_eq!(b.get("c"), Some("%4"));
    assert_eq!(b.get("d"), Some("\u{fffd}"), "invalid UTF-8 is U+FFFD");
    assert_eq!(b.get("e"), Some("€"));
    assert_eq!(b.get("f"), Some("€"));
    // `%` itself is always written encoded.
    assert_eq!(
        b.to_string(),
        "a=50%25,b=%25zz,c=%254,d=%EF%BF%BD,e=%E2%82%AC,f=%E2%82%AC"
    );
}

#[test]
fn duplicates_are_kept_and_get_reads_the_last() {
    let b = Baggage::parse("k=1,other=x,k=2").unwrap();
    assert_eq!(b.len(), 3);
    assert_eq!(b.get("k"), Some("2"));
    assert_eq!(b.to_string(), "k=1,other=x,k=2");
    // `with` replaces them all, in the place of the first.
    let b = b.with("k", "3");
    assert_eq!(b.to_string(), "k=3,other=x");
}

#[test]
fn with_replaces_or_appends() {
    let original = Baggage::parse("a=1;p,b=2").unwrap();
    let replaced = original.with("a", "one");
    assert_eq!(
        replaced.to_string(),
        "a=one,b=2",
        "properties go with the old value"
    );
    assert_eq!(
        original.to_string(),
        "a=1;p,b=2",
        "the original is unchanged"
    );
    let added = original.with("c", "a,b;c d");
    assert_eq!(added.to_string(), "a=1;p,b=2,c=a%2Cb%3Bc%20d");
    assert_eq!(added.get("c"), Some("a,b;c d"));
    assert_eq!(
        original.try_with("bad key", "v"),
        Err(TraceError::BaggageKey)
    );
    assert_eq!(original.try_with("", "v"), Err(TraceError::BaggageKey));
}

#[test]
#[should_panic(expected = "not an RFC 7230 token")]
fn with_panics_on_a_bad_key() {
    let _ = Baggage::new().with("bad key", "v");
}

#[test]
fn limits_are_minimums_not_caps() {
    // 64 members and 8192 bytes must be propagated...
    let b = (0..64).fold(Baggage::new(), |b, i| b.with(&format!("key{i}"), "value"));
    assert_eq!(b.to_string().split(',').count(), 64);
    let long = Baggage::new().with("a", &"0123456789".repeat(819));
    assert_eq!(long.to_string().len(), 8192);
    // ... and more is kept too.
    let header: String = (0..512)
        .map(|i| format!("{i:03}=0123456789a"))
        .collect::<Vec<_>>()
        .join(",");
    let many = Baggage::parse(&header).unwrap();
    assert_eq!(many.len(), 512);
    assert_eq!(many.to_string(), header);
    let huge = Baggage::new().with("a", &"x".repeat(20_000));
    assert_eq!(Baggage::parse(&huge.to_string()).unwrap(), huge);
}

#[test]
fn debug_lists_members() {
    let b = Baggage::parse("a=1;p,b=x%20y").unwrap();
    assert_eq!(format!("{b:?}"), r#"[("a", "1", "p"), ("b", "x y", "")]"#);
}

proptest! {
    #[test]
    fn round_trip(entries in proptest::collection::vec(
        ("[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}", any::<String>()),
        0..20,
    )) {
        let b = entries.iter().fold(Baggage::new(), |b, (k, v)| b.with(k, v));
        let header = b.to_string();
        prop_assert!(header.bytes().all(|c| (0x21..0x7f).contains(&c)));
        let parsed = Baggage::parse(&header).unwrap();
        prop_assert_eq!(&parsed, &b);
        for (k, _) in &entries {
            let last = entries.iter().rev().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
            prop_assert_eq!(parsed.get(k), last);
        }
    }

    #[test]
    fn never_panics(header in "\\PC{0,100}") {
        if let Ok(b) = Baggage::parse(&header) {
            prop_assert_eq!(Baggage::parse(&b.to_string()).unwrap(), b);
        }
    }
}
