//! Kubernetes resource quantities (`5Gi`, `500m`, `1e3`), parsed for comparison.

/// The value of a quantity in base units (bytes, cores), or `None` when it is not a quantity.
#[must_use]
pub fn parse(quantity: &str) -> Option<f64> {
    let quantity = quantity.trim();
    let split = quantity
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '+' | '-')))
        .unwrap_or(quantity.len());
    let (number, suffix) = quantity.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024_f64,
        "Mi" => 1024_f64.powi(2),
        "Gi" => 1024_f64.powi(3),
        "Ti" => 1024_f64.powi(4),
        "Pi" => 1024_f64.powi(5),
        "Ei" => 1024_f64.powi(6),
        exponent if exponent.starts_with(['e', 'E']) => 10_f64.powi(exponent[1..].parse().ok()?),
        _ => return None,
    };
    Some(number * factor)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn quantities_parse_in_every_notation() {
        assert_eq!(parse("5Gi"), Some(5.0 * 1024.0 * 1024.0 * 1024.0));
        assert_eq!(parse("5000Mi"), Some(5000.0 * 1024.0 * 1024.0));
        assert_eq!(parse("5G"), Some(5e9));
        assert_eq!(parse("500m"), Some(0.5));
        assert_eq!(parse("1e3"), Some(1000.0));
        assert_eq!(parse("2"), Some(2.0));
        assert_eq!(parse("1.5Gi"), Some(1.5 * 1024.0 * 1024.0 * 1024.0));
        assert_eq!(parse("5 apples"), None);
        assert_eq!(parse("Gi"), None);
        assert!(parse("5000Mi") < parse("5Gi"));
    }
}
