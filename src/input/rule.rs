//! Which characters a text may hold, and how names and usernames are prepared
//! before they are checked, stored or compared (PRECIS: RFC 8264 and its profiles
//! RFC 8265 for usernames and RFC 8266 for nicknames).

use unicode_normalization::char::canonical_combining_class;
use unicode_normalization::UnicodeNormalization;

/// `U+0000` notation for a character in an error message (the message itself
/// must not carry the character back).
pub fn code_point(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

/// The first control character (C0 U+0000–U+001F, DEL U+007F, C1 U+0080–U+009F:
/// the Unicode general category Cc, which RFC 8264 §9.11 disallows in every PRECIS
/// class) in `s`. `multiline` text may hold TAB, LF and CR, the whitespace of
/// line-wrapped base64 (RFC 2045 §6.8).
pub fn find_control(s: &str, multiline: bool) -> Option<char> {
    s.chars()
        .find(|&c| c.is_control() && !(multiline && matches!(c, '\t' | '\n' | '\r')))
}

/// Why one character of a name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Control(char),
    /// Changes the display order (Unicode bidirectional formatting characters).
    Bidi(char),
    /// Invisible or formatting (general category Cf, and the line and paragraph
    /// separators): two names that differ only by these look the same.
    Invisible(char),
    PrivateUse(char),
    Noncharacter(char),
}

impl Refused {
    pub fn reason(self) -> String {
        match self {
            Refused::Control(c) => format!("contains a control character ({})", code_point(c)),
            Refused::Bidi(c) => format!(
                "contains a bidirectional formatting character ({}), which can make it display as another name; remove it",
                code_point(c)
            ),
            Refused::Invisible(c) => format!(
                "contains an invisible character ({}), which can make it look like another name; remove it",
                code_point(c)
            ),
            Refused::PrivateUse(c) => {
                format!("contains a private-use character ({})", code_point(c))
            }
            Refused::Noncharacter(c) => {
                format!("contains a Unicode noncharacter ({})", code_point(c))
            }
        }
    }
}

/// U+061C ARABIC LETTER MARK, U+200E/F LRM/RLM, U+202A–U+202E embeddings and
/// overrides, U+2066–U+2069 isolates (Unicode UAX #9 §2).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// The other characters of general category Cf (Unicode 15.1), which the PRECIS
/// FreeformClass does not allow (RFC 8264 §4.3: Cf is in none of its valid
/// categories), plus U+2028/U+2029 (Zl, Zp).
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{0600}'..='\u{0605}' | '\u{06DD}' | '\u{070F}' | '\u{0890}'..='\u{0891}'
        | '\u{08E2}' | '\u{180E}' | '\u{200B}'..='\u{200D}' | '\u{2028}' | '\u{2029}'
        | '\u{2060}'..='\u{2064}' | '\u{206A}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}'
        | '\u{110BD}' | '\u{110CD}' | '\u{13430}'..='\u{1343F}' | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}' | '\u{E0001}' | '\u{E0020}'..='\u{E007F}')
}

fn is_private_use(c: char) -> bool {
    matches!(c, '\u{E000}'..='\u{F8FF}' | '\u{F0000}'..='\u{FFFFD}' | '\u{100000}'..='\u{10FFFD}')
}

fn is_noncharacter(c: char) -> bool {
    matches!(c, '\u{FDD0}'..='\u{FDEF}') || (u32::from(c) & 0xFFFE) == 0xFFFE
}

/// ZERO WIDTH NON-JOINER / JOINER are CONTEXTJ (RFC 8264 §9.8, RFC 5892 Appendix
/// A.1, A.2): allowed right after a virama (canonical combining class 9), where
/// Indic scripts need them. The Arabic-joining context of A.1 needs joining-type
/// data the hub does not carry, so it is not accepted.
fn is_joiner_in_context(c: char, before: Option<char>) -> bool {
    matches!(c, '\u{200C}' | '\u{200D}')
        && before.is_some_and(|b| canonical_combining_class(b) == 9)
}

/// The first character that keeps `s` from being a name a person can read and tell
/// apart from others (the FreeformClass of RFC 8264 §4.3 in what the hub can check
/// without the full Unicode tables: unassigned code points are not detected).
pub fn refused_in_name(s: &str) -> Option<Refused> {
    let mut before = None;
    for c in s.chars() {
        let refused = if c.is_control() {
            Some(Refused::Control(c))
        } else if is_bidi_control(c) {
            Some(Refused::Bidi(c))
        } else if is_invisible(c) && !is_joiner_in_context(c, before) {
            Some(Refused::Invisible(c))
        } else if is_private_use(c) {
            Some(Refused::PrivateUse(c))
        } else if is_noncharacter(c) {
            Some(Refused::Noncharacter(c))
        } else {
            None
        };
        if refused.is_some() {
            return refused;
        }
        before = Some(c);
    }
    None
}

/// Bidi controls and invisible characters only (for text that is not a name but
/// identifies a person to others, e.g. an email address).
pub fn refused_as_lookalike(s: &str) -> Option<Refused> {
    s.chars().find_map(|c| {
        if is_bidi_control(c) {
            Some(Refused::Bidi(c))
        } else if is_invisible(c) {
            Some(Refused::Invisible(c))
        } else {
            None
        }
    })
}

/// General category Zs: the spaces RFC 8266 §2.1 maps to U+0020.
fn is_space_separator(c: char) -> bool {
    matches!(
        c,
        ' ' | '\u{00A0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}'
    )
}

/// A person's or an org's name as the Nickname profile prepares it (RFC 8266 §2.2):
/// every space becomes U+0020, leading and trailing spaces go, runs of spaces become
/// one, then NFKC. Check the result with [`refused_in_name`].
pub fn prepare_name(s: &str) -> String {
    let spaced: String = s
        .chars()
        .map(|c| if is_space_separator(c) { ' ' } else { c })
        .collect();
    let words: Vec<&str> = spaced.split(' ').filter(|w| !w.is_empty()).collect();
    words.join(" ").nfkc().collect()
}

/// A username as the UsernameCaseMapped profile prepares it (RFC 8265 §3.3.2):
/// fullwidth and halfwidth forms to their usual width, lower case, NFC. The hub then
/// allows only an ASCII subset of the IdentifierClass, so the directionality rule
/// (step 5, RFC 5893) always holds. Surrounding whitespace is trimmed, as before.
pub fn prepare_username(s: &str) -> String {
    let narrowed: String = s
        .trim()
        .chars()
        .flat_map(|c| {
            let wide = c == '\u{3000}' || ('\u{FF00}'..='\u{FFEF}').contains(&c);
            let mapped: Vec<char> = if wide {
                std::iter::once(c).nfkc().collect()
            } else {
                vec![c]
            };
            mapped
        })
        .collect();
    narrowed.to_lowercase().nfc().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_found_and_whitespace_only_where_multiline() {
        assert_eq!(find_control("a\u{0}b", false), Some('\u{0}'));
        assert_eq!(find_control("a\u{85}b", false), Some('\u{85}'));
        assert_eq!(find_control("a\u{7f}", true), Some('\u{7f}'));
        assert_eq!(find_control("PHNh\r\nbWw+", false), Some('\r'));
        assert_eq!(find_control("PHNh\r\n\tbWw+", true), None);
        assert_eq!(find_control("Zoë ☃ 名前", false), None);
    }

    #[test]
    fn names_refuse_bidi_and_invisible_characters() {
        assert_eq!(refused_in_name("Ana Ruiz"), None);
        assert_eq!(refused_in_name("José Ñúñez-O'Brien"), None);
        assert_eq!(
            refused_in_name("Ana\u{202E}ziuR"),
            Some(Refused::Bidi('\u{202E}'))
        );
        assert_eq!(
            refused_in_name("Ana\u{2067}x"),
            Some(Refused::Bidi('\u{2067}'))
        );
        assert_eq!(
            refused_in_name("A\u{200B}na"),
            Some(Refused::Invisible('\u{200B}'))
        );
        assert_eq!(
            refused_in_name("An\u{AD}a"),
            Some(Refused::Invisible('\u{AD}'))
        );
        assert_eq!(
            refused_in_name("\u{FEFF}Ana"),
            Some(Refused::Invisible('\u{FEFF}'))
        );
        assert_eq!(
            refused_in_name("Ana\u{E000}"),
            Some(Refused::PrivateUse('\u{E000}'))
        );
        // Devanagari KSSA written with an explicit half form: virama + ZWJ.
        assert_eq!(refused_in_name("क\u{94D}\u{200D}ष"), None);
        assert_eq!(
            refused_in_name("a\u{200D}b"),
            Some(Refused::Invisible('\u{200D}'))
        );
    }

    #[test]
    fn names_are_prepared_as_nicknames() {
        assert_eq!(prepare_name("  Ana\u{00A0}\u{3000} Ruiz "), "Ana Ruiz");
        assert_eq!(prepare_name("ＡＮＡ"), "ANA");
        assert_eq!(prepare_name("Zoe\u{0308}"), "Zoë");
    }

    #[test]
    fn usernames_are_width_and_case_mapped() {
        assert_eq!(prepare_username(" Ａｎａ.Ruiz "), "ana.ruiz");
        assert_eq!(prepare_username("ANA"), "ana");
        assert_eq!(prepare_username("a\u{200B}b"), "a\u{200B}b");
    }
}
