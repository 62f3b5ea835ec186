//! Durations written in job files: `90s`, `45m`, `26h`, `7d`, `2w`, `1h30m`.

use std::time::Duration;

/// The longest duration accepted: 100 years. Every duration is later added to or taken from
/// a date (retention, RPO, grace periods); beyond this those dates overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 86_400);

/// Parses a duration (at most [`MAX_DURATION`]).
///
/// # Errors
/// A sentence quoting the text and giving the expected form.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!("'{text}' is not a duration: expected a number with a unit (s, m, h, d, w), like 90s, 26h, 7d or 1h30m")
    };
    let too_long = || format!("'{text}' is too long a duration: at most 100 years (5200w) is accepted");
    let t = text.trim();
    if t.is_empty() {
        return Err(bad());
    }
    let mut total = 0u64;
    let mut num = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().map_err(|_| bad())?;
        num.clear();
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(bad()),
        };
        total = n.checked_mul(unit).and_then(|v| total.checked_add(v)).ok_or_else(too_long)?;
    }
    if !num.is_empty() {
        return Err(bad());
    }
    let d = Duration::from_secs(total);
    if d > MAX_DURATION {
        return Err(too_long());
    }
    Ok(d)
}

/// `26h`-style text for a duration.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "0s".into(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("26h").unwrap(), Duration::from_secs(26 * 3600));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("2w").unwrap(), Duration::from_secs(14 * 86400));
        assert!(parse_duration("10").unwrap_err().contains("'10'"));
        assert!(parse_duration("3 days").is_err());
        assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
        for huge in ["100000000w", "999999999999999999w", "18446744073709551615w", "99999999999999999999s"] {
            let e = parse_duration(huge).unwrap_err();
            assert!(e.contains(huge), "{e}");
        }
        assert_eq!(parse_duration("5200w").unwrap(), Duration::from_secs(5200 * 7 * 86400));
    }
}
