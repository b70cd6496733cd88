//! Identifier and value rules of `docs/domain.md` section 2: the unified social credit code (USCC) with
//! both of its check characters, region codes, CMA numbers, id patterns and text.

use std::fmt;

/// The 31-character USCC alphabet (GB 32100-2015): no I, O, Z, S, V.
pub const USCC_ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
const ORG_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];

/// One thing wrong with a unified social credit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsccProblem {
    /// Not 18 characters long.
    Length {
        /// The number of characters found.
        found: usize,
    },
    /// Lower-case letters are not part of the code (never silently upper-cased).
    LowerCase,
    /// A character outside the 31-character alphabet, at a 1-based position.
    Character {
        /// 1-based position.
        position: usize,
        /// The character found.
        found: char,
    },
    /// The organisation code's own check character (position 17, GB 11714) is wrong.
    OrganisationCheck {
        /// The character the first 8 organisation-code characters call for.
        expected: char,
        /// The character found.
        found: char,
    },
    /// The code's check character (position 18) is wrong.
    CheckCharacter {
        /// The character the first 17 characters call for.
        expected: char,
        /// The character found.
        found: char,
    },
}

impl fmt::Display for UsccProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsccProblem::Length { found } => write!(f, "expected 18 characters, found {found}"),
            UsccProblem::LowerCase => write!(f, "lower-case letters are not allowed (codes are upper case)"),
            UsccProblem::Character { position, found } => {
                write!(f, "character {position} '{found}' is not in the USCC alphabet {USCC_ALPHABET}")
            }
            UsccProblem::OrganisationCheck { expected, found } => {
                write!(f, "organisation code check character (position 17) should be '{expected}', found '{found}'")
            }
            UsccProblem::CheckCharacter { expected, found } => {
                write!(f, "check character (position 18) should be '{expected}', found '{found}'")
            }
        }
    }
}

/// The GB 32100 check character for the first 17 characters of a code, if they are in the alphabet.
pub fn uscc_check_character(first17: &str) -> Option<char> {
    let mut sum = 0u32;
    let mut n = 0;
    for (ch, w) in first17.chars().zip(USCC_WEIGHTS) {
        sum += USCC_ALPHABET.find(ch)? as u32 * w;
        n += 1;
    }
    if n != 17 || first17.chars().count() != 17 {
        return None;
    }
    let c = (31 - sum % 31) % 31;
    USCC_ALPHABET.chars().nth(c as usize)
}

/// The GB 11714 check character for the first 8 characters of an organisation code.
pub fn organisation_check_character(first8: &str) -> Option<char> {
    if first8.chars().count() != 8 {
        return None;
    }
    let mut sum = 0u32;
    for (ch, w) in first8.chars().zip(ORG_WEIGHTS) {
        let v = match ch {
            '0'..='9' => ch as u32 - '0' as u32,
            'A'..='Z' => ch as u32 - 'A' as u32 + 10,
            _ => return None,
        };
        sum += v * w;
    }
    Some(match 11 - sum % 11 {
        10 => 'X',
        11 => '0',
        c => char::from_digit(c, 10)?,
    })
}

/// The value of a character in the USCC alphabet (its index), if it belongs to it.
fn uscc_value(b: u8) -> Option<u32> {
    USCC_ALPHABET.as_bytes().iter().position(|&c| c == b).map(|i| i as u32)
}

/// Checks a unified social credit code; returns every problem found (both check characters are
/// checked independently, so a code can have two problems). Allocation-free when the code is valid:
/// this runs for every party of every record.
pub fn check_uscc(code: &str) -> Vec<UsccProblem> {
    let mut problems = Vec::new();
    if code.chars().any(char::is_lowercase) {
        problems.push(UsccProblem::LowerCase);
    }
    let count = code.chars().count();
    if count != 18 {
        problems.push(UsccProblem::Length { found: count });
        return problems;
    }
    for (i, c) in code.chars().enumerate() {
        if !USCC_ALPHABET.contains(c) && !c.is_lowercase() {
            problems.push(UsccProblem::Character { position: i + 1, found: c });
        }
    }
    if !problems.is_empty() {
        return problems;
    }
    // From here every character is one ASCII byte of the alphabet.
    let b = code.as_bytes();
    let mut org_sum = 0u32;
    for (&ch, w) in b[8..16].iter().zip(ORG_WEIGHTS) {
        let v = if ch.is_ascii_digit() { (ch - b'0') as u32 } else { (ch - b'A') as u32 + 10 };
        org_sum += v * w;
    }
    let org_expected = match 11 - org_sum % 11 {
        10 => 'X',
        11 => '0',
        c => char::from(b'0' + c as u8),
    };
    if org_expected as u8 != b[16] {
        problems.push(UsccProblem::OrganisationCheck { expected: org_expected, found: b[16] as char });
    }
    let mut sum = 0u32;
    for (&ch, w) in b[..17].iter().zip(USCC_WEIGHTS) {
        sum += uscc_value(ch).unwrap_or(0) * w;
    }
    let expected = USCC_ALPHABET.as_bytes()[((31 - sum % 31) % 31) as usize];
    if expected != b[17] {
        problems.push(UsccProblem::CheckCharacter { expected: expected as char, found: b[17] as char });
    }
    problems
}

/// Province-level prefixes of GB/T 2260 (`docs/domain.md` section 2).
pub const PROVINCE_PREFIXES: [&str; 34] = [
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41", "42", "43", "44",
    "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "71", "81", "82",
];

/// Whether `code` is a 6-digit GB/T 2260 code with a known province prefix.
pub fn is_region(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) && PROVINCE_PREFIXES.contains(&&code[..2])
}

/// The province-level region of a region code (`320583` → `320000`).
pub fn province_of(region: &str) -> String {
    format!("{}0000", region.get(..2).unwrap_or(""))
}

/// Whether `cma` is a lab accreditation number: 12 digits.
pub fn is_cma(cma: &str) -> bool {
    cma.len() == 12 && cma.bytes().all(|b| b.is_ascii_digit())
}

/// An identifier pattern of the domain model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdPattern {
    /// `[A-Z0-9-]{4,40}` — plan ids.
    Plan,
    /// `[A-Z0-9-]{6,40}` — sample, case and signal ids.
    Record,
    /// `[A-Za-z0-9-]{4,40}` — report numbers.
    Report,
    /// `[A-Za-z0-9_-]{1,64}` — message ids, and event ids (the domain gives no pattern for these).
    Message,
}

impl IdPattern {
    /// The pattern as a regular expression, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            IdPattern::Plan => "[A-Z0-9-]{4,40}",
            IdPattern::Record => "[A-Z0-9-]{6,40}",
            IdPattern::Report => "[A-Za-z0-9-]{4,40}",
            IdPattern::Message => "[A-Za-z0-9_-]{1,64}",
        }
    }

    /// Whether `id` matches the pattern.
    pub fn matches(self, id: &str) -> bool {
        let (min, max) = match self {
            IdPattern::Plan | IdPattern::Report => (4, 40),
            IdPattern::Record => (6, 40),
            IdPattern::Message => (1, 64),
        };
        let allowed = |b: u8| match self {
            IdPattern::Plan | IdPattern::Record => b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-',
            IdPattern::Report => b.is_ascii_alphanumeric() || b == b'-',
            IdPattern::Message => b.is_ascii_alphanumeric() || b == b'-' || b == b'_',
        };
        (min..=max).contains(&id.len()) && id.bytes().all(allowed)
    }
}

/// What is wrong with a text value, if anything: canonical text is trimmed and has no control
/// characters.
pub fn text_problem(text: &str) -> Option<&'static str> {
    // Runs for every text field of every record: a byte scan instead of decoding characters.
    // `char::is_control` is exactly C0, DEL and C1 (U+0080–U+009F, encoded C2 80 – C2 9F).
    // The fold has no early exit, so it compiles to a vector loop; C1 needs a lead byte C2, which
    // most text (ASCII, CJK) never holds, so `contains` usually ends that check at once.
    let b = text.as_bytes();
    let control = b.iter().fold(false, |found, &c| found | (c < 0x20) | (c == 0x7f))
        || (b.contains(&0xc2) && b.windows(2).any(|w| w[0] == 0xc2 && (0x80..=0x9f).contains(&w[1])));
    let padded = text.chars().next().is_some_and(char::is_whitespace)
        || text.chars().next_back().is_some_and(char::is_whitespace);
    if control {
        Some("must not contain control characters")
    } else if padded {
        Some("must not have leading or trailing white space")
    } else {
        None
    }
}

/// Whether `url` is an absolute http or https URL with a host and no white space.
pub fn is_http_url(url: &str) -> bool {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(r) => {
            let host = r.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty() && !url.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

/// Whether `period` is a month `YYYY-MM` (years 2000–2100).
pub fn is_period(period: &str) -> bool {
    let b = period.as_bytes();
    b.len() == 7
        && b[4] == b'-'
        && b[..4].iter().chain(&b[5..]).all(u8::is_ascii_digit)
        && period[..4].parse::<u32>().is_ok_and(|y| (2000..=2100).contains(&y))
        && period[5..].parse::<u32>().is_ok_and(|m| (1..=12).contains(&m))
}

/// Is the party identifier the SAMR platform (used in envelopes, never a region)?
pub fn is_samr(id: &str) -> bool {
    id == "SAMR"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_valid_example_of_the_domain_passes() {
        for code in [
            "91350100M000100Y43",
            "91110000802100433B",
            "91310000607352483G",
            "9131011552601815X1",
            "913205839083016639",
            "91330106131860916H",
            "91110108390996033G",
            "913401040824628146",
            "91440305948219939N",
            "91310000MA1FL8M09K",
        ] {
            assert_eq!(check_uscc(code), vec![], "{code}");
        }
    }

    #[test]
    fn both_problems_of_the_first_invalid_example_are_reported() {
        assert_eq!(
            check_uscc("91310000MA1FL8M08K"),
            vec![
                UsccProblem::OrganisationCheck { expected: '9', found: '8' },
                UsccProblem::CheckCharacter { expected: 'G', found: 'K' },
            ]
        );
    }

    #[test]
    fn organisation_check_alone_is_caught() {
        assert_eq!(
            check_uscc("913100006073524880"),
            vec![UsccProblem::OrganisationCheck { expected: '3', found: '8' }]
        );
    }

    #[test]
    fn lower_case_is_refused_not_upper_cased() {
        let problems = check_uscc("91310000ma1fl8m09k");
        assert!(problems.contains(&UsccProblem::LowerCase), "{problems:?}");
        assert!(!check_uscc("91330106131860916h").is_empty());
    }

    #[test]
    fn length_and_alphabet() {
        assert_eq!(check_uscc("9131000060735248"), vec![UsccProblem::Length { found: 16 }]);
        assert_eq!(check_uscc("91310000607352483I")[0], UsccProblem::Character { position: 18, found: 'I' });
        assert!(check_uscc("").contains(&UsccProblem::Length { found: 0 }));
        // Full-width characters are not digits.
        assert!(!check_uscc("９1310000607352483G").is_empty());
    }

    #[test]
    fn check_characters_computed() {
        assert_eq!(uscc_check_character("91310000MA1FL8M08"), Some('G'));
        assert_eq!(organisation_check_character("MA1FL8M0"), Some('9'));
        assert_eq!(organisation_check_character("60735248"), Some('3'));
    }

    #[test]
    fn regions() {
        for r in ["310000", "320000", "330000", "110000", "320583", "340000", "820000"] {
            assert!(is_region(r), "{r}");
        }
        for r in ["300000", "31000", "3100000", "99xxxx", "", "390000", "100000"] {
            assert!(!is_region(r), "{r}");
        }
        assert_eq!(province_of("320583"), "320000");
        assert_eq!(province_of("330106"), "330000");
    }

    #[test]
    fn ids_cma_text_url_period() {
        assert!(IdPattern::Plan.matches("YRD-2024-WS-01"));
        assert!(!IdPattern::Plan.matches("ABC"));
        assert!(IdPattern::Record.matches("JS2024WS0102-0007"));
        assert!(!IdPattern::Record.matches("js2024ws0102"));
        assert!(!IdPattern::Record.matches("ABCDE"));
        assert!(!IdPattern::Record.matches(&"A".repeat(41)));
        assert!(IdPattern::Report.matches("JSZJ-2024-ws-00731"));
        assert!(!IdPattern::Report.matches("JSZJ_2024"));
        assert!(IdPattern::Message.matches("YRDX_20240312-000045"));
        assert!(!IdPattern::Message.matches(""));
        assert!(is_cma("241012340567"));
        assert!(!is_cma("24101234056"));
        assert!(!is_cma("24101234056X"));
        assert_eq!(text_problem("恒力"), None);
        assert!(text_problem(" 恒力").is_some());
        assert!(text_problem("a\u{7}b").is_some());
        // The byte scan agrees with the character definitions on every kind of character.
        for c in ['\u{0}', '\u{1f}', '\u{7f}', '\u{80}', '\u{85}', '\u{9f}', '\u{a0}', '\u{3000}', 'a', '中', '\u{c2}']
        {
            let inner = format!("x{c}y");
            assert_eq!(text_problem(&inner).is_some(), c.is_control(), "{c:?} inside");
            let edge = format!("{c}y");
            assert_eq!(text_problem(&edge).is_some(), c.is_control() || c.is_whitespace(), "{c:?} first");
            let edge = format!("y{c}");
            assert_eq!(text_problem(&edge).is_some(), c.is_control() || c.is_whitespace(), "{c:?} last");
        }
        assert!(is_http_url("https://suxing.example.com/shop/128"));
        assert!(!is_http_url("ftp://x"));
        assert!(!is_http_url("https://"));
        assert!(is_period("2024-03"));
        assert!(!is_period("2024-13"));
        assert!(!is_period("2024-3"));
    }
}
