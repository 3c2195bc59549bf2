//! [`Baggage`]: the W3C Baggage header — user key-value pairs that travel
//! with a request.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use super::error::TraceError;
use super::percent;
use super::traceparent::trim_ows;

/// The W3C `baggage` header: key-value pairs, each with optional properties,
/// that travel with a request through every service it reaches.
///
/// Values are percent-decoded when parsed and percent-encoded when written
/// ([`Display`](fmt::Display) gives the header value). Keys are RFC 7230
/// tokens and are case-sensitive. Properties (`;k=v;flag` after a value) are
/// kept as received, without the optional whitespace, and written back
/// unchanged.
///
/// The specification's limits (64 list-members, 8192 bytes) are the least a
/// platform must propagate, not caps: larger baggage is parsed and written
/// in full. Malformed baggage is rejected as a whole.
///
/// Cloning is cheap: the members are shared.
///
/// ```
/// use baton_http::trace::Baggage;
///
/// let baggage: Baggage = "userId=alice, serverNode = DF%2028;region=eu".parse()?;
/// assert_eq!(baggage.get("serverNode"), Some("DF 28"));
///
/// let baggage = baggage.with("userId", "Amélie").with("isProduction", "false");
/// assert_eq!(
///     baggage.to_string(),
///     "userId=Am%C3%A9lie,serverNode=DF%2028;region=eu,isProduction=false",
/// );
///
/// let members: Vec<_> = baggage.iter().collect();
/// assert_eq!(members[1], ("serverNode", "DF 28", "region=eu"));
/// # Ok::<(), baton_http::trace::TraceError>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Baggage {
    members: Arc<[Member]>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Member {
    key: String,
    /// Percent-decoded.
    value: String,
    /// As received (percent-encoded), without optional whitespace and
    /// without the leading `;`; empty when there are none.
    properties: String,
}

impl Baggage {
    /// Empty baggage.
    pub fn new() -> Baggage {
        Baggage::default()
    }

    /// Parses a `baggage` header value (several headers combined with `,`).
    ///
    /// Optional whitespace around list-members, keys, values, `=` and `;`
    /// is ignored; empty list-members (`a=1,,b=2`, an empty header) are
    /// skipped, as RFC 7230 lists allow. Members with the same key are all
    /// kept, in order (the specification asks that their order be
    /// preserved); [`get`](Baggage::get) reads the last.
    ///
    /// A `%` that does not start a `%XX` escape is kept as it is; decoded
    /// bytes that are not UTF-8 become U+FFFD.
    ///
    /// ```
    /// use baton_http::trace::{Baggage, TraceError};
    ///
    /// let baggage = Baggage::parse("key1=value1;property1;property2, key2 = value2")?;
    /// assert_eq!(baggage.len(), 2);
    /// assert_eq!(baggage.get("key2"), Some("value2"));
    ///
    /// assert_eq!(Baggage::parse("userId=Amélie"), Err(TraceError::BaggageValue));
    /// assert_eq!(Baggage::parse("user id=alice"), Err(TraceError::BaggageKey));
    /// # Ok::<(), TraceError>(())
    /// ```
    pub fn parse(value: &str) -> Result<Baggage, TraceError> {
        let mut members = Vec::new();
        for member in value.split(',') {
            let member = trim_ows(member);
            if member.is_empty() {
                continue;
            }
            members.push(parse_member(member)?);
        }
        Ok(Baggage {
            members: members.into(),
        })
    }

    /// The value of `key`, percent-decoded; the last one if the key was
    /// received more than once.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.members
            .iter()
            .rev()
            .find(|m| m.key == key)
            .map(|m| m.value.as_str())
    }

    /// The list-members in order, as `(key, value, properties)`: the value
    /// percent-decoded, the properties as received (`"k=v;flag"`, percent
    /// escapes kept, no leading `;`), empty when there are none.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str, &str)> + '_ {
        self.members
            .iter()
            .map(|m| (m.key.as_str(), m.value.as_str(), m.properties.as_str()))
    }

    /// The number of list-members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there are no list-members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// This baggage with `key` set to `value` (written percent-encoded) and
    /// no properties. An existing member with that key is replaced in its
    /// place (and any later duplicates of it removed); otherwise the member
    /// is added at the end.
    ///
    /// # Panics
    ///
    /// If `key` is not an RFC 7230 token (letters, digits and
    /// ``!#$%&'*+-.^_`|~``); [`try_with`](Baggage::try_with) returns an error
    /// instead.
    ///
    /// ```
    /// use baton_http::trace::Baggage;
    ///
    /// let baggage = Baggage::new().with("tenant", "acme corp").with("tenant", "globex");
    /// assert_eq!(baggage.get("tenant"), Some("globex"));
    /// assert_eq!(baggage.len(), 1);
    /// ```
    #[track_caller]
    pub fn with(&self, key: &str, value: &str) -> Baggage {
        match self.try_with(key, value) {
            Ok(baggage) => baggage,
            Err(_) => panic!("baggage key {key:?} is not an RFC 7230 token"),
        }
    }

    /// Like [`with`](Baggage::with), but an invalid key is
    /// [`TraceError::BaggageKey`] instead of a panic.
    pub fn try_with(&self, key: &str, value: &str) -> Result<Baggage, TraceError> {
        if !is_token(key) {
            return Err(TraceError::BaggageKey);
        }
        let new = Member {
            key: key.to_owned(),
            value: value.to_owned(),
            properties: String::new(),
        };
        let mut members = Vec::with_capacity(self.members.len() + 1);
        let mut new = Some(new);
        for member in self.members.iter() {
            if member.key != key {
                members.push(member.clone());
            } else if let Some(new) = new.take() {
                members.push(new);
            }
        }
        members.extend(new);
        Ok(Baggage {
            members: members.into(),
        })
    }
}

/// `key OWS "=" OWS value *( OWS ";" OWS property )`, already trimmed.
fn parse_member(member: &str) -> Result<Member, TraceError> {
    let mut parts = member.split(';');
    let kv = parts.next().unwrap_or_default();
    let (key, value) = kv.split_once('=').ok_or(TraceError::BaggageMember)?;
    let key = key_of(key)?;
    let value = value_of(value)?;
    let mut properties = String::new();
    for property in parts {
        let property = trim_ows(property);
        if property.is_empty() {
            return Err(TraceError::BaggageProperty);
        }
        if !properties.is_empty() {
            properties.push(';');
        }
        match property.split_once('=') {
            Some((key, value)) => {
                properties.push_str(key_of(key)?);
                properties.push('=');
                properties.push_str(value_of(value)?);
            }
            None => properties.push_str(key_of(property)?),
        }
    }
    Ok(Member {
        key: key.to_owned(),
        value: percent::decode(value),
        properties,
    })
}

fn key_of(key: &str) -> Result<&str, TraceError> {
    let key = trim_ows(key);
    if is_token(key) {
        Ok(key)
    } else {
        Err(TraceError::BaggageKey)
    }
}

fn value_of(value: &str) -> Result<&str, TraceError> {
    let value = trim_ows(value);
    if value.bytes().all(percent::is_baggage_octet) {
        Ok(value)
    } else {
        Err(TraceError::BaggageValue)
    }
}

/// RFC 7230 `token = 1*tchar`.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl FromStr for Baggage {
    type Err = TraceError;

    fn from_str(s: &str) -> Result<Baggage, TraceError> {
        Baggage::parse(s)
    }
}

/// The `baggage` header value: `key=value;properties` list-members joined by
/// `,`, values percent-encoded.
impl fmt::Display for Baggage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        for (i, m) in self.members.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&m.key);
            out.push('=');
            percent::encode_into(&m.value, &mut out);
            if !m.properties.is_empty() {
                out.push(';');
                out.push_str(&m.properties);
            }
        }
        f.write_str(&out)
    }
}

impl fmt::Debug for Baggage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}
