//! The one way the hub writes XML (SAML messages and metadata): a thin builder over
//! quick-xml's `Writer`, so that markup comes only from this module and every value
//! goes through its escaping. A value cannot close an attribute or an element, or
//! open a comment, CDATA section or processing instruction, whatever it holds.
//!
//! - Element and attribute names are `&'static str`: names come from the code, never
//!   from data. Values (attribute values, character data) are `&str` and escaped.
//! - Elements nest through closures (`element(name, attrs, |x| …)`), so every start
//!   tag has its end tag: the output is one well-formed tree by construction.
//! - Escaping is quick-xml's (`<`, `>`, `&`, `'`, `"` as the five predefined entities,
//!   XML 1.0 §4.6), plus character references for the whitespace a parser would
//!   otherwise change: TAB, LF and CR in attribute values (attribute-value
//!   normalisation turns them into spaces, §3.3.3) and CR in character data
//!   (end-of-line handling turns it into LF, §2.11). What is written is what the
//!   reader gets back, which is what the signature covers.
//! - A character XML 1.0 cannot carry at all (a C0 control other than TAB, LF, CR;
//!   U+FFFE, U+FFFF: the `Char` production of §2.2) is refused with an error, not
//!   written: not even a character reference may stand for it.
//! - Markup that this module did not write (the assertion as xmlsec serialised it
//!   after signing) enters only as a [`Fragment`], checked to be one well-formed
//!   element.

use std::borrow::Cow;

use quick_xml::escape::escape;
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::name::QName;
use quick_xml::Writer;

/// Attributes in the order they are written: (name, unescaped value).
pub type Attrs<'a> = &'a [(&'static str, &'a str)];

#[derive(Debug, thiserror::Error)]
pub enum XmlWriteError {
    /// The value names where it was going, never the value itself (it may be personal
    /// data, and logs must not carry it).
    #[error("the value of {0} holds a character XML 1.0 cannot carry (XML 1.0 §2.2, Char)")]
    Unrepresentable(&'static str),
    #[error("{0} is not one well-formed XML element")]
    BadFragment(&'static str),
    #[error("writing XML: {0}")]
    Io(#[from] std::io::Error),
    #[error("the XML written is not UTF-8")]
    NotUtf8,
}

/// XML 1.0 §2.2: `Char ::= #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] |
/// [#x10000-#x10FFFF]` (a Rust `char` is never a surrogate).
fn is_xml_char(c: char) -> bool {
    !matches!(c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}')
}

fn checked<'v>(what: &'static str, value: &'v str) -> Result<&'v str, XmlWriteError> {
    if value.chars().all(is_xml_char) {
        Ok(value)
    } else {
        Err(XmlWriteError::Unrepresentable(what))
    }
}

/// Escaped with quick-xml, then the whitespace characters in `keep` as character
/// references, which parsers pass through unchanged.
fn escaped<'v>(value: &'v str, keep: &[char]) -> Cow<'v, str> {
    let e = escape(value);
    if !e.contains(keep) {
        return e;
    }
    let mut out = String::with_capacity(e.len() + 8);
    for c in e.chars() {
        match c {
            '\t' if keep.contains(&c) => out.push_str("&#9;"),
            '\n' if keep.contains(&c) => out.push_str("&#10;"),
            '\r' if keep.contains(&c) => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Attribute values keep TAB, LF and CR (§3.3.3); character data keeps CR (§2.11).
const ATTRIBUTE_WHITESPACE: &[char] = &['\t', '\n', '\r'];
const TEXT_WHITESPACE: &[char] = &['\r'];

/// Markup not written by [`XmlWriter`] that may still be embedded: exactly one
/// well-formed element (no DTD, no second root, no undeclared prefix).
pub struct Fragment(String);

impl Fragment {
    /// xmlsec's serialisation of an element this module wrote (signing adds the
    /// digest and signature values and re-serialises; the caller strips the XML
    /// declaration). `what` names it in the error.
    pub fn signed(xml: String, what: &'static str) -> Result<Fragment, XmlWriteError> {
        match super::xml_tree::Tree::parse(&xml) {
            Some(_) => Ok(Fragment(xml)),
            None => Err(XmlWriteError::BadFragment(what)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A document (or one element) being written.
pub struct XmlWriter {
    w: Writer<Vec<u8>>,
    indented: bool,
}

impl XmlWriter {
    /// No whitespace between elements: messages (what is signed and sent).
    pub fn new() -> XmlWriter {
        XmlWriter {
            w: Writer::new(Vec::new()),
            indented: false,
        }
    }

    /// Two spaces per level, for documents people read (metadata).
    pub fn indented() -> XmlWriter {
        XmlWriter {
            w: Writer::new_with_indent(Vec::new(), b' ', 2),
            indented: true,
        }
    }

    /// `<?xml version="1.0" encoding="UTF-8"?>` (XML 1.0 §2.8).
    pub fn declaration(&mut self) -> Result<(), XmlWriteError> {
        self.w
            .write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        Ok(())
    }

    fn start(name: &'static str, attrs: Attrs<'_>) -> Result<BytesStart<'static>, XmlWriteError> {
        let mut start = BytesStart::new(name);
        for &(key, value) in attrs {
            let value = escaped(checked(key, value)?, ATTRIBUTE_WHITESPACE);
            // Already escaped above: the byte form of `Attribute` is taken as it is.
            start.push_attribute(Attribute {
                key: QName(key.as_bytes()),
                value: Cow::Borrowed(value.as_bytes()),
            });
        }
        Ok(start)
    }

    /// `<name attrs…>`, what `body` writes, `</name>`.
    pub fn element<F>(
        &mut self,
        name: &'static str,
        attrs: Attrs<'_>,
        body: F,
    ) -> Result<(), XmlWriteError>
    where
        F: FnOnce(&mut XmlWriter) -> Result<(), XmlWriteError>,
    {
        self.w
            .write_event(Event::Start(Self::start(name, attrs)?))?;
        body(self)?;
        self.w.write_event(Event::End(BytesEnd::new(name)))?;
        Ok(())
    }

    /// `<name attrs…/>`.
    pub fn empty(&mut self, name: &'static str, attrs: Attrs<'_>) -> Result<(), XmlWriteError> {
        self.w
            .write_event(Event::Empty(Self::start(name, attrs)?))?;
        Ok(())
    }

    /// `<name attrs…>text</name>`, the text escaped (an empty text gives
    /// `<name></name>`, as xmlsec's templates have their empty values).
    pub fn text_element(
        &mut self,
        name: &'static str,
        attrs: Attrs<'_>,
        text: &str,
    ) -> Result<(), XmlWriteError> {
        let text = escaped(checked(name, text)?, TEXT_WHITESPACE);
        self.w
            .write_event(Event::Start(Self::start(name, attrs)?))?;
        self.w
            .write_event(Event::Text(BytesText::from_escaped(text)))?;
        self.w.write_event(Event::End(BytesEnd::new(name)))?;
        Ok(())
    }

    /// A checked fragment, as it is.
    pub fn fragment(&mut self, f: &Fragment) -> Result<(), XmlWriteError> {
        if self.indented {
            self.w.write_indent()?;
        }
        std::io::Write::write_all(self.w.get_mut(), f.as_str().as_bytes())?;
        Ok(())
    }

    pub fn finish(self) -> Result<String, XmlWriteError> {
        let mut bytes = self.w.into_inner();
        if self.indented {
            bytes.push(b'\n');
        }
        String::from_utf8(bytes).map_err(|_| XmlWriteError::NotUtf8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::federation::xml_tree::Tree;

    const HOSTILE: &str = "a<b>&c\"d'e]]>f<!-- x -->g<?pi?>h<![CDATA[i]]>&amp;\tj\nk\r\nl\rm";

    #[test]
    fn values_round_trip_and_stay_values() {
        let mut x = XmlWriter::new();
        x.element("r", &[("xmlns", "urn:t"), ("a", HOSTILE)], |x| {
            x.text_element("t", &[("b", HOSTILE)], HOSTILE)?;
            x.empty("e", &[("c", HOSTILE)])
        })
        .unwrap();
        let xml = x.finish().unwrap();
        assert!(!xml.contains("<!--") && !xml.contains("<?pi") && !xml.contains("<![CDATA"));
        let tree = Tree::parse(&xml).unwrap();
        let root = tree.root().unwrap();
        assert_eq!(root.attr("a"), Some(HOSTILE));
        let children: Vec<_> = tree.children(Tree::ROOT).map(|(_, e)| e).collect();
        assert_eq!(children.len(), 2, "{xml}");
        assert_eq!(children[0].attr("b"), Some(HOSTILE));
        assert_eq!(children[0].text, HOSTILE);
        assert_eq!(children[1].attr("c"), Some(HOSTILE));
    }

    #[test]
    fn characters_xml_cannot_carry_are_refused() {
        for bad in ["\u{0}", "a\u{1}b", "\u{1b}[0m", "\u{FFFE}", "\u{FFFF}"] {
            let mut x = XmlWriter::new();
            let e = x.text_element("t", &[], bad).unwrap_err();
            assert!(e.to_string().contains("t holds"), "{e}");
            let mut x = XmlWriter::new();
            assert!(x.empty("t", &[("k", bad)]).is_err());
        }
        let mut x = XmlWriter::new();
        x.text_element("t", &[], "\u{D7FF}\u{E000}\u{FFFD}\u{10000}\u{10FFFF}")
            .unwrap();
    }

    #[test]
    fn names_and_layout_are_the_codes_own() {
        let mut x = XmlWriter::new();
        x.declaration().unwrap();
        x.element("p:r", &[("xmlns:p", "urn:p")], |x| {
            x.text_element("p:t", &[], "")?;
            x.empty("p:e", &[("k", "v")])
        })
        .unwrap();
        assert_eq!(
            x.finish().unwrap(),
            r#"<?xml version="1.0" encoding="UTF-8"?><p:r xmlns:p="urn:p"><p:t></p:t><p:e k="v"/></p:r>"#
        );
        let mut x = XmlWriter::indented();
        x.element("r", &[], |x| {
            x.element("a", &[], |x| x.text_element("b", &[], "t"))
        })
        .unwrap();
        assert_eq!(
            x.finish().unwrap(),
            "<r>\n  <a>\n    <b>t</b>\n  </a>\n</r>\n"
        );
    }

    #[test]
    fn fragments_must_be_one_element() {
        assert!(Fragment::signed("<a xmlns=\"urn:a\"><b/></a>".into(), "f").is_ok());
        for bad in ["<a/><b/>", "<a>", "text", "<!DOCTYPE a><a/>", "<p:a/>"] {
            assert!(Fragment::signed(bad.into(), "f").is_err(), "{bad}");
        }
    }
}
