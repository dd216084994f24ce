//! Tiny XML writer for query-protocol responses.

/// Escapes text for an XML element body.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// An XML fragment being built.
#[derive(Default)]
pub struct Xml(pub String);

impl Xml {
    /// `<name>text</name>`.
    pub fn text(&mut self, name: &str, value: &str) -> &mut Self {
        self.0.push_str(&format!("<{name}>{}</{name}>", esc(value)));
        self
    }
    /// `<name>text</name>` when present.
    pub fn opt(&mut self, name: &str, value: Option<&str>) -> &mut Self {
        if let Some(v) = value {
            self.text(name, v);
        }
        self
    }
    /// `<name>...</name>` with children written by `f`.
    pub fn el(&mut self, name: &str, f: impl FnOnce(&mut Xml)) -> &mut Self {
        self.0.push_str(&format!("<{name}>"));
        f(self);
        self.0.push_str(&format!("</{name}>"));
        self
    }
    /// Escaped text directly inside the current element (a `member` of a list of strings).
    pub fn raw_member(&mut self, value: &str) -> &mut Self {
        self.0.push_str(&esc(value));
        self
    }
    /// `<name><member>...</member>...</name>`.
    pub fn list<T>(
        &mut self,
        name: &str,
        items: impl IntoIterator<Item = T>,
        mut f: impl FnMut(&mut Xml, T),
    ) -> &mut Self {
        self.0.push_str(&format!("<{name}>"));
        for item in items {
            self.0.push_str("<member>");
            f(self, item);
            self.0.push_str("</member>");
        }
        self.0.push_str(&format!("</{name}>"));
        self
    }
}

/// The EB XML namespace.
pub const NS: &str = "https://elasticbeanstalk.amazonaws.com/docs/2010-12-01/";

/// `<{action}Response xmlns=...><{action}Result>{body}</...><ResponseMetadata>...`.
pub fn response(action: &str, request_id: &str, body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"{NS}\"><{action}Result>{body}</{action}Result><ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>"
    )
}

/// The query-protocol error document.
pub fn error(kind: &str, code: &str, message: &str, request_id: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse xmlns=\"{NS}\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
        esc(code),
        esc(message)
    )
}
