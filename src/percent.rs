//! Percent-encoding (RFC 3986) of text put into URLs and URIs: query values of paging
//! links and of the searches sync makes, and `meta.source`.

/// `text` with every byte but the unreserved characters (`A-Z a-z 0-9 - . _ ~`) and
/// those in `keep` written as `%XX`.
pub fn encode(text: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') || keep.contains(&b)
        {
            out.push(char::from(b));
        } else {
            // Written digit by digit: a `format!` per byte was most of the work of a
            // search page's links.
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xF)]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::encode;

    #[test]
    fn keeps_unreserved_and_the_asked_and_encodes_the_rest_as_utf8() {
        assert_eq!(encode("a-b.c_d~e", &[]), "a-b.c_d~e");
        assert_eq!(encode("x|y +01:00", &[]), "x%7Cy%20%2B01%3A00");
        assert_eq!(encode("CarePlan/k:1", b"/:"), "CarePlan/k:1");
        assert_eq!(encode("Journalsystem Åre", &[]), "Journalsystem%20%C3%85re");
    }
}
