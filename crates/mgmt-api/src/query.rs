//! Query strings: percent-encoding, decoding, and scrubbing secrets before anything is logged.

/// Query parameters whose values are secrets and never appear in logs, errors or call records.
const SECRET_KEYS: &[&str] = &["password"];

/// Builds `?k=v&...` (empty when there are no pairs), percent-encoding keys and values.
pub(crate) fn build(pairs: &[(&str, String)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let joined = pairs
        .iter()
        .map(|(key, value)| format!("{}={}", encode(key), encode(value)))
        .collect::<Vec<_>>()
        .join("&");
    format!("?{joined}")
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The query string (without `?`) with the value of every secret parameter replaced by `***`.
pub fn redact(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if SECRET_KEYS.contains(&decode(key).as_str()) => format!("{key}=***"),
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Replaces every occurrence of `secret` in `text` by `***` (servers may echo what they were sent).
pub(crate) fn scrub(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        return text.to_string();
    }
    text.replace(secret, "***").replace(&encode(secret), "***")
}

/// Splits a query string (without `?`) into decoded pairs; `+` means space as in HTML forms.
#[cfg(any(test, feature = "fake"))]
pub(crate) fn parse(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

/// Percent-decodes `text`; malformed escapes are kept as written.
pub(crate) fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'%' if index + 2 < bytes.len() => match hex_pair(bytes[index + 1], bytes[index + 2]) {
                Some(byte) => {
                    out.push(byte);
                    index += 3;
                }
                None => {
                    out.push(b'%');
                    index += 1;
                }
            },
            b'+' => {
                out.push(b' ');
                index += 1;
            }
            other => {
                out.push(other);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_pair(high: u8, low: u8) -> Option<u8> {
    let digit = |c: u8| char::from(c).to_digit(16);
    let value = digit(high)? * 16 + digit(low)?;
    u8::try_from(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_encoded_query() {
        let query = build(&[("username", "a b".into()), ("password", "p&w=d/é".into())]);
        assert_eq!(query, "?username=a%20b&password=p%26w%3Dd%2F%C3%A9");
        assert_eq!(build(&[]), "");
    }

    #[test]
    fn decode_reverses_encode() {
        for text in ["plain", "a b", "p&w=d/é", "100%", "%zz", "trailing%4"] {
            assert_eq!(decode(&encode(text)), text);
        }
        assert_eq!(decode("a+b"), "a b");
        assert_eq!(decode("%zz"), "%zz");
        assert_eq!(decode("x%4"), "x%4");
    }

    #[test]
    fn parse_splits_and_decodes() {
        assert_eq!(
            parse("a=1&b=x%20y&flag"),
            vec![
                ("a".to_string(), "1".to_string()),
                ("b".to_string(), "x y".to_string()),
                ("flag".to_string(), String::new())
            ]
        );
    }

    #[test]
    fn redact_hides_passwords_only() {
        assert_eq!(
            redact("username=admin&password=s3cr%26t&can_login=true"),
            "username=admin&password=***&can_login=true"
        );
        assert_eq!(redact("keyspaceName=ks"), "keyspaceName=ks");
    }

    #[test]
    fn scrub_hides_plain_and_encoded_secret() {
        assert_eq!(
            scrub("bad password p&w for x", "p&w"),
            "bad password *** for x"
        );
        assert_eq!(scrub("echo p%26w", "p&w"), "echo ***");
        assert_eq!(scrub("nothing", ""), "nothing");
    }
}
