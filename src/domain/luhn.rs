//! The Luhn (mod 10) check digit used by Swedish personal identity numbers.

/// The check digit for `digits` (each 0–9), weighting from the left with 2, 1, 2, 1, ….
pub(crate) fn check_digit(digits: &[u8]) -> u8 {
    let sum: u32 = digits
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            let p = u32::from(d) * if i % 2 == 0 { 2 } else { 1 };
            p / 10 + p % 10
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

#[cfg(test)]
mod tests {
    use super::check_digit;

    #[test]
    fn known_check_digits() {
        // 121212-121(2): the classic Swedish example number.
        assert_eq!(check_digit(&[1, 2, 1, 2, 1, 2, 1, 2, 1]), 2);
        // 811218-987(6), from Skatteverket's description of the check digit.
        assert_eq!(check_digit(&[8, 1, 1, 2, 1, 8, 9, 8, 7]), 6);
    }
}
