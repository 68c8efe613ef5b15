//! The few XML documents the Blob service exchanges: List Blobs results, error
//! bodies, and the Put Block List request. Parsed into a small element tree so
//! unknown elements, attribute order, whitespace, entities and CDATA are all fine.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use quick_xml::Reader;
use quick_xml::events::Event;

use super::BlobItem;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    /// Concatenated character data directly inside this element.
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == name)
    }

    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a whole document into its root element (namespace prefixes dropped).
pub(crate) fn parse(body: &[u8]) -> Result<Element, String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("response is not UTF-8: {e}"))?;
    let text = text.trim_start_matches('\u{feff}');
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("malformed XML at byte {}: {e}", reader.buffer_position()))?;
        match event {
            Event::Start(start) => stack.push(open(&start)?),
            Event::Empty(start) => {
                stack.push(open(&start)?);
                close(&mut stack, &mut root)?;
            }
            Event::End(_) => close(&mut stack, &mut root)?,
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(c) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&c.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                let name = r.xml10_content();
                let ch = resolve_reference(&name)
                    .ok_or_else(|| format!("unknown XML entity &{name};"))?;
                if let Some(top) = stack.last_mut() {
                    top.text.push(ch);
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err("truncated XML document".into());
    }
    root.ok_or_else(|| "empty XML document".into())
}

fn open(start: &quick_xml::events::BytesStart<'_>) -> Result<Element, String> {
    let mut el = Element {
        name: start.local_name().as_ref().to_owned(),
        ..Element::default()
    };
    for attr in start.attributes() {
        let attr = attr.map_err(|e| format!("malformed XML attribute: {e}"))?;
        let value = attr
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| format!("malformed XML attribute value: {e}"))?;
        el.attrs.push((
            attr.key.local_name().as_ref().to_owned(),
            value.into_owned(),
        ));
    }
    Ok(el)
}

fn close(stack: &mut Vec<Element>, root: &mut Option<Element>) -> Result<(), String> {
    let el = stack.pop().ok_or("unbalanced XML end tag")?;
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None if root.is_none() => *root = Some(el),
        None => return Err("more than one XML root element".into()),
    }
    Ok(())
}

/// `amp`, `lt`, ..., `#38`, `#x26`.
fn resolve_reference(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => {
            let num = name.strip_prefix('#')?;
            let code = match num.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => num.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

/// `<Error><Code/><Message/><AuthenticationErrorDetail/></Error>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServiceError {
    pub code: String,
    pub message: String,
    pub auth_detail: Option<String>,
}

pub(crate) fn parse_error(body: &[u8]) -> Option<ServiceError> {
    if body.is_empty() {
        return None;
    }
    let root = parse(body).ok()?;
    if root.name != "Error" {
        return None;
    }
    Some(ServiceError {
        code: root
            .child_text("Code")
            .unwrap_or_default()
            .trim()
            .to_owned(),
        message: root
            .child_text("Message")
            .unwrap_or_default()
            .trim()
            .to_owned(),
        auth_detail: root
            .child_text("AuthenticationErrorDetail")
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()),
    })
}

/// One page of List Blobs: the items and the `NextMarker` (None when done).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListPage {
    pub items: Vec<BlobItem>,
    pub next_marker: Option<String>,
}

pub(crate) fn parse_list(body: &[u8]) -> Result<ListPage, String> {
    let root = parse(body)?;
    if root.name != "EnumerationResults" {
        return Err(format!(
            "expected <EnumerationResults>, got <{}>",
            root.name
        ));
    }
    let mut items = Vec::new();
    if let Some(blobs) = root.child("Blobs") {
        for blob in blobs.children_named("Blob") {
            items.push(parse_blob(blob)?);
        }
    }
    let next_marker = root
        .child_text("NextMarker")
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_owned);
    Ok(ListPage { items, next_marker })
}

fn parse_blob(blob: &Element) -> Result<BlobItem, String> {
    let name_el = blob.child("Name").ok_or("<Blob> without <Name>")?;
    // Names holding characters XML cannot carry come percent-encoded (2020-10-02+).
    let name = if name_el.attr("Encoded") == Some("true") {
        percent_decode(&name_el.text)?
    } else {
        name_el.text.clone()
    };
    let props = blob.child("Properties");
    let size = match props.and_then(|p| p.child_text("Content-Length")) {
        Some(s) => s
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("blob {name}: bad Content-Length {s:?}"))?,
        None => 0,
    };
    let md5 = props
        .and_then(|p| p.child_text("Content-MD5"))
        .and_then(decode_md5);
    let metadata = blob
        .child("Metadata")
        .map(|m| {
            m.children
                .iter()
                // Keys that are not valid HTTP header names come back as x-ms-invalid-name.
                .filter(|c| c.name != "x-ms-invalid-name")
                .map(|c| (c.name.clone(), c.text.clone()))
                .collect::<BTreeMap<_, _>>()
        })
        .unwrap_or_default();
    Ok(BlobItem {
        name,
        size,
        md5,
        metadata,
    })
}

/// Base64 of a 16-byte MD5, or None when empty or malformed.
pub(crate) fn decode_md5(s: &str) -> Option<[u8; 16]> {
    let bytes = B64.decode(s.trim()).ok()?;
    bytes.try_into().ok()
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent-encoding in blob name {s:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("blob name {s:?} is not UTF-8"))
}

/// The Put Block List body committing `ids` (base64, unencoded) in order.
pub(crate) fn block_list(ids: &[String]) -> String {
    let mut xml = String::with_capacity(64 + ids.len() * (ids.first().map_or(0, String::len) + 17));
    xml.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
    for id in ids {
        // Base64 needs no XML escaping.
        xml.push_str("<Latest>");
        xml.push_str(id);
        xml.push_str("</Latest>");
    }
    xml.push_str("</BlockList>");
    xml
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<EnumerationResults ServiceEndpoint="http://127.0.0.1:10000/devstoreaccount1" ContainerName="c">
  <Prefix>p/</Prefix>
  <MaxResults>2</MaxResults>
  <Blobs>
    <Blob>
      <Name>p/a &amp; b.bin</Name>
      <Properties>
        <Creation-Time>Mon, 01 Jan 2024 00:00:00 GMT</Creation-Time>
        <Content-Length>1048576</Content-Length>
        <Content-Type>application/octet-stream</Content-Type>
        <Content-MD5>1B2M2Y8AsgTpgAmY7PhCfg==</Content-MD5>
        <BlobType>BlockBlob</BlobType>
      </Properties>
      <Metadata><source>ngc</source><Version>1&#x2E;0</Version><x-ms-invalid-name>x</x-ms-invalid-name></Metadata>
    </Blob>
    <Blob>
      <Name Encoded="true">p/%EF%BF%BEodd</Name>
      <Properties><Content-Length>0</Content-Length><Content-MD5 /></Properties>
      <Metadata />
    </Blob>
    <Blob><Name><![CDATA[p/<cdata>]]></Name><Properties><Content-Length>3</Content-Length></Properties></Blob>
  </Blobs>
  <NextMarker>2!64!marker</NextMarker>
</EnumerationResults>"#;

    #[test]
    fn parses_list_page() {
        let page = parse_list(LIST.as_bytes()).unwrap();
        assert_eq!(page.next_marker.as_deref(), Some("2!64!marker"));
        assert_eq!(page.items.len(), 3);
        let a = &page.items[0];
        assert_eq!(a.name, "p/a & b.bin");
        assert_eq!(a.size, 1_048_576);
        assert_eq!(
            a.md5,
            Some([
                0xd4, 0x1d, 0x8c, 0xd9, 0x8f, 0x00, 0xb2, 0x04, 0xe9, 0x80, 0x09, 0x98, 0xec, 0xf8,
                0x42, 0x7e
            ])
        );
        assert_eq!(
            a.metadata,
            BTreeMap::from([
                ("Version".to_owned(), "1.0".to_owned()),
                ("source".to_owned(), "ngc".to_owned())
            ])
        );
        let b = &page.items[1];
        assert_eq!(b.name, "p/\u{fffe}odd");
        assert_eq!((b.size, b.md5), (0, None));
        assert!(b.metadata.is_empty());
        assert_eq!(page.items[2].name, "p/<cdata>");
        assert_eq!(page.items[2].size, 3);
    }

    #[test]
    fn last_page_and_empty_results() {
        let page =
            parse_list(b"<EnumerationResults><Blobs/><NextMarker/></EnumerationResults>").unwrap();
        assert!(page.items.is_empty());
        assert_eq!(page.next_marker, None);
        let page =
            parse_list(b"<EnumerationResults ContainerName='c'></EnumerationResults>").unwrap();
        assert!(page.items.is_empty() && page.next_marker.is_none());
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_list(b"").is_err());
        assert!(parse_list(b"<html><body>proxy error</body></html>").is_err());
        assert!(parse_list(b"<EnumerationResults><Blobs>").is_err());
        assert!(parse_list(b"<EnumerationResults></Wrong>").is_err());
        assert!(
            parse_list(b"<EnumerationResults><Blobs><Blob/></Blobs></EnumerationResults>").is_err()
        );
        assert!(parse_error(b"not xml").is_none());
    }

    #[test]
    fn block_list_body() {
        assert_eq!(
            block_list(&["QUFB".into(), "QkJC".into()]),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList><Latest>QUFB</Latest><Latest>QkJC</Latest></BlockList>"
        );
    }
}
