//! A small read-only element tree for the parts of a SAMLResponse that samael's schema
//! does not read: the `<saml:EncryptedAssertion>` of most IdPs (XML Encryption 1.1 §3)
//! and the few Response attributes needed before it is decrypted.
//!
//! Built with quick-xml's namespace-aware reader: no DTD, no entity beyond the five
//! predefined ones, one root, a bounded number of elements. Every element keeps the
//! byte range it occupies in the source, so a decrypted assertion can take the place
//! of its EncryptedAssertion in exactly the context the IdP encrypted it in (XML
//! Encryption 1.1 §4.4, step 5: the plaintext replaces the EncryptedData in the
//! document, and its namespace prefixes resolve there).

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

pub const SAMLP: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub const SAML: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
pub const DS: &str = "http://www.w3.org/2000/09/xmldsig#";
pub const XENC: &str = "http://www.w3.org/2001/04/xmlenc#";
pub const XENC11: &str = "http://www.w3.org/2009/xmlenc11#";

/// A Response has a few dozen elements; this bounds the work on a hostile one.
const MAX_ELEMENTS: usize = 20_000;

#[derive(Debug)]
pub struct Element {
    pub ns: String,
    pub name: String,
    attrs: Vec<(String, String)>,
    /// The element's own character data (not its descendants'), unescaped.
    pub text: String,
    children: Vec<usize>,
    /// Byte range of the whole element (start tag to end tag) in the source.
    pub start: usize,
    pub end: usize,
}

impl Element {
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }

    /// An unqualified attribute (SAML and XML Encryption attributes have no prefix).
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
pub struct Tree {
    nodes: Vec<Element>,
}

impl Tree {
    /// None when the text is not one well-formed element (or carries a DTD).
    pub fn parse(xml: &str) -> Option<Tree> {
        let mut reader = NsReader::from_str(xml);
        let mut nodes: Vec<Element> = Vec::new();
        let mut open: Vec<usize> = Vec::new();
        loop {
            let start = usize::try_from(reader.buffer_position()).ok()?;
            let (ns, event) = reader.read_resolved_event().ok()?;
            // Owned now: the resolved namespace borrows the reader.
            let ns = match ns {
                ResolveResult::Bound(n) => String::from_utf8(n.as_ref().to_vec()).ok(),
                ResolveResult::Unbound => Some(String::new()),
                ResolveResult::Unknown(_) => None,
            };
            let end = usize::try_from(reader.buffer_position()).ok()?;
            match event {
                Event::Start(ref e) | Event::Empty(ref e) => {
                    if open.is_empty() && !nodes.is_empty() || nodes.len() >= MAX_ELEMENTS {
                        return None;
                    }
                    let ns = ns?;
                    let index = nodes.len();
                    nodes.push(element(e, ns, start, end)?);
                    if let Some(parent) = open.last() {
                        nodes.get_mut(*parent)?.children.push(index);
                    }
                    if matches!(event, Event::Start(_)) {
                        open.push(index);
                    }
                }
                Event::End(_) => {
                    let index = open.pop()?;
                    nodes.get_mut(index)?.end = end;
                }
                Event::Text(t) => {
                    let text = t.unescape().ok()?;
                    match open.last() {
                        Some(i) => nodes.get_mut(*i)?.text.push_str(&text),
                        None if text.trim().is_empty() => {}
                        None => return None,
                    }
                }
                Event::CData(c) => {
                    let i = open.last()?;
                    let text = std::str::from_utf8(&c).ok()?.to_string();
                    nodes.get_mut(*i)?.text.push_str(&text);
                }
                Event::DocType(_) => return None,
                Event::Eof => break,
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            }
        }
        (open.is_empty() && !nodes.is_empty()).then_some(Tree { nodes })
    }

    pub const ROOT: usize = 0;

    pub fn get(&self, index: usize) -> Option<&Element> {
        self.nodes.get(index)
    }

    pub fn root(&self) -> Option<&Element> {
        self.nodes.first()
    }

    /// Direct children, with their indices.
    pub fn children(&self, index: usize) -> impl Iterator<Item = (usize, &Element)> {
        self.nodes
            .get(index)
            .map(|e| e.children.as_slice())
            .unwrap_or_default()
            .iter()
            .filter_map(|i| self.nodes.get(*i).map(|e| (*i, e)))
    }

    /// The first direct child with this name.
    pub fn child(&self, index: usize, ns: &str, name: &str) -> Option<usize> {
        self.children(index)
            .find(|(_, e)| e.is(ns, name))
            .map(|(i, _)| i)
    }
}

fn element(e: &BytesStart<'_>, ns: String, start: usize, end: usize) -> Option<Element> {
    let name = String::from_utf8(e.local_name().as_ref().to_vec()).ok()?;
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.ok()?;
        let key = a.key.as_ref();
        if key == b"xmlns" || key.starts_with(b"xmlns:") {
            continue;
        }
        let local = String::from_utf8(a.key.local_name().as_ref().to_vec()).ok()?;
        attrs.push((local, a.unescape_value().ok()?.into_owned()));
    }
    Some(Element {
        ns,
        name,
        attrs,
        text: String::new(),
        children: Vec::new(),
        start,
        end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_names_and_text() {
        let xml = r#"<?xml version="1.0"?><p:R xmlns:p="urn:oasis:names:tc:SAML:2.0:protocol" ID="a&amp;b"><x:E xmlns:x="urn:oasis:names:tc:SAML:2.0:assertion">t<y/></x:E></p:R>"#;
        let t = Tree::parse(xml).unwrap();
        let root = t.root().unwrap();
        assert!(root.is(SAMLP, "R"));
        assert_eq!(root.attr("ID"), Some("a&b"));
        let e = t.child(Tree::ROOT, SAML, "E").unwrap();
        let e = t.get(e).unwrap();
        assert_eq!(e.text, "t");
        assert!(xml[e.start..e.end].starts_with("<x:E") && xml[e.start..e.end].ends_with("</x:E>"));
        assert_eq!(&xml[root.start..root.end], &xml[21..]);
    }

    #[test]
    fn dtds_second_roots_and_unbound_prefixes_are_refused() {
        assert!(Tree::parse("<!DOCTYPE a><a/>").is_none());
        assert!(Tree::parse("<a/><b/>").is_none());
        assert!(Tree::parse("<a>").is_none());
        assert!(Tree::parse("<p:a/>").is_none());
        assert!(Tree::parse("<a>&ent;</a>").is_none());
    }
}
