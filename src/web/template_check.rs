//! The start-up check of the page templates (issue 14): a filter, test or function
//! that minijinja does not have, or a variable no handler passes, is found when the
//! hub starts, not when a person opens the page (`unknown filter: urlencode` once
//! broke the sign-in page only when a district IdP was configured).
//!
//! minijinja looks filters, tests and functions up when a template runs, so the
//! check reads each template's expressions and asks the environment for every name
//! used; variables are compared with the template's declared context
//! (`TEMPLATES` in `render.rs`), using minijinja's own parser (`undeclared_variables`).

use std::collections::BTreeSet;

use minijinja::{Environment, ErrorKind};

/// What a template uses from the environment, by kind.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Uses {
    pub filters: BTreeSet<String>,
    pub tests: BTreeSet<String>,
    pub functions: BTreeSet<String>,
    /// Names the template defines itself (macros), callable like functions.
    pub macros: BTreeSet<String>,
}

/// Reads the filter, test and function names used in a template's `{{ … }}` and
/// `{% … %}` blocks (string literals and comments skipped).
pub(super) fn uses(source: &str) -> Uses {
    let mut out = Uses::default();
    let mut rest = source;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let close = match after.chars().next() {
            Some('{') => "}}",
            Some('%') => "%}",
            Some('#') => {
                // A comment: skip to its end.
                match after.find("#}") {
                    Some(end) => {
                        rest = &after[end + 2..];
                        continue;
                    }
                    None => break,
                }
            }
            _ => {
                rest = after;
                continue;
            }
        };
        let body = &after[1..];
        let end = body.find(close).unwrap_or(body.len());
        scan_expression(&body[..end], &mut out);
        rest = &body[(end + close.len()).min(body.len())..];
    }
    out
}

#[derive(Debug, PartialEq)]
enum Tok {
    Ident(String),
    Punct(char),
}

fn tokens(expr: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut chars = expr.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' || c == '\'' {
            // A string literal: skip it (escapes included).
            while let Some(d) = chars.next() {
                if d == '\\' {
                    chars.next();
                } else if d == c {
                    break;
                }
            }
            out.push(Tok::Punct('s'));
        } else if c.is_alphabetic() || c == '_' {
            let mut ident = c.to_string();
            while let Some(&d) = chars.peek() {
                if d.is_alphanumeric() || d == '_' {
                    ident.push(d);
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(Tok::Ident(ident));
        } else if !c.is_whitespace() {
            out.push(Tok::Punct(c));
        }
    }
    out
}

fn scan_expression(expr: &str, out: &mut Uses) {
    let toks = tokens(expr);
    for (i, tok) in toks.iter().enumerate() {
        let Tok::Ident(name) = tok else {
            if *tok == Tok::Punct('|') {
                if let Some(Tok::Ident(f)) = toks.get(i + 1) {
                    out.filters.insert(f.clone());
                }
            }
            continue;
        };
        let prev = i.checked_sub(1).and_then(|p| toks.get(p));
        match name.as_str() {
            "is" => {
                let mut j = i + 1;
                if matches!(toks.get(j), Some(Tok::Ident(n)) if n == "not") {
                    j += 1;
                }
                if let Some(Tok::Ident(t)) = toks.get(j) {
                    out.tests.insert(t.clone());
                }
            }
            "macro" if i == 0 => {
                if let Some(Tok::Ident(m)) = toks.get(1) {
                    out.macros.insert(m.clone());
                }
            }
            _ => {
                let called = toks.get(i + 1) == Some(&Tok::Punct('('));
                let method = prev == Some(&Tok::Punct('.'));
                let filter = prev == Some(&Tok::Punct('|'));
                let test = matches!(prev, Some(Tok::Ident(p)) if p == "is" || p == "not");
                let defined = i == 1 && matches!(&toks[0], Tok::Ident(k) if k == "macro");
                if called && !method && !filter && !test && !defined {
                    out.functions.insert(name.clone());
                }
            }
        }
    }
}

/// The message keys a template asks the catalog for: `t("key")` and `t('key')`.
pub(super) fn message_keys(source: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for (i, _) in source.match_indices("t(") {
        let before = source[..i].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') {
            continue;
        }
        let rest = &source[i + 2..];
        let Some(quote) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            continue;
        };
        if let Some(end) = rest[1..].find(quote) {
            keys.insert(rest[1..1 + end].to_string());
        }
    }
    keys
}

/// Every problem with one template: unknown filters, tests and functions, and
/// variables outside `declared` (`None` when the template is fine).
pub(super) fn check(
    env: &Environment<'static>,
    name: &str,
    source: &str,
    declared: &BTreeSet<&str>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let used = uses(source);
    for f in &used.filters {
        if probe(
            env,
            &format!("{{{{ none | {f} }}}}"),
            ErrorKind::UnknownFilter,
        ) {
            problems.push(format!("{name}: unknown filter `{f}`"));
        }
    }
    for t in &used.tests {
        if probe(
            env,
            &format!("{{{{ none is {t} }}}}"),
            ErrorKind::UnknownTest,
        ) {
            problems.push(format!("{name}: unknown test `{t}`"));
        }
    }
    for f in used.functions.difference(&used.macros) {
        if declared.contains(f.as_str()) {
            continue;
        }
        if probe(env, &format!("{{{{ {f}() }}}}"), ErrorKind::UnknownFunction) {
            problems.push(format!("{name}: unknown function `{f}`"));
        }
    }
    match env.get_template(name) {
        Ok(template) => {
            let mut vars: Vec<String> = template
                .undeclared_variables(false)
                .into_iter()
                .filter(|v| {
                    !declared.contains(v.as_str())
                        && !used.functions.contains(v)
                        && env.globals().all(|(g, _)| g != v)
                })
                .collect();
            vars.sort();
            for v in vars {
                problems.push(format!(
                    "{name}: variable `{v}` is not in the page's declared context"
                ));
            }
        }
        Err(e) => problems.push(format!("{name}: {e}")),
    }
    problems
}

/// True when rendering `probe` fails with exactly `kind` (the name is unknown).
fn probe(env: &Environment<'static>, probe: &str, kind: ErrorKind) -> bool {
    match env.render_str(probe, ()) {
        Ok(_) => false,
        Err(e) => e.kind() == kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reads_filters_tests_and_functions_but_not_strings_or_methods() {
        let u = uses(
            r#"{% if a is not defined %}{{ t("x | fake(") }}{% endif %}
{# {{ b | commented }} #}{{ c|urlencode }}{{ loop.cycle("a", "b") }}
{% macro field(n) %}{{ n | e }}{% endmacro %}{{ field(1) }}{{ range(3) | join(",") }}"#,
        );
        assert_eq!(u.filters, set(&["urlencode", "e", "join"]));
        assert_eq!(u.tests, set(&["defined"]));
        assert_eq!(u.functions, set(&["t", "field", "range"]));
        assert_eq!(u.macros, set(&["field"]));
    }

    /// Every `message("key")` the Rust code asks for (error texts, notices) is in
    /// the catalog too; a missing one would show the bare key to a person.
    #[test]
    fn every_message_the_code_shows_is_in_the_catalog() {
        let catalog: std::collections::HashMap<String, String> =
            toml::from_str(include_str!("messages.en.toml")).unwrap();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut stack = vec![root];
        let mut asked = 0;
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                // `message("key")` and a `PageError::Catalog`'s `key: "key"`.
                let asks = text
                    .match_indices("message(\"")
                    .map(|(i, m)| i + m.len())
                    .chain(text.match_indices("key: \"").map(|(i, m)| i + m.len()));
                for start in asks.collect::<Vec<_>>() {
                    let rest = &text[start..];
                    let Some(end) = rest.find('"') else { continue };
                    let key = &rest[..end];
                    if key.contains('.') && !key.contains(' ') {
                        asked += 1;
                        assert!(
                            catalog.contains_key(key),
                            "{}: message `{key}` is not in messages.en.toml",
                            path.display()
                        );
                    }
                }
            }
        }
        assert!(asked > 5, "the scan found the code's messages ({asked})");
    }

    #[test]
    fn reads_the_message_keys_a_template_uses() {
        let keys = message_keys(r#"{{ t("a.b") }} {{ t('c') }} {{ at("no") }} {{ x.t("no") }}"#);
        assert_eq!(keys, set(&["a.b", "c"]));
    }

    #[test]
    fn an_unknown_filter_test_function_or_variable_is_reported() {
        let mut env = Environment::new();
        let src = "{{ a | urlencodee }}{% if a is frobbed %}{{ nosuch() }}{% endif %}{{ typo }}";
        env.add_template("bad.html", src).unwrap();
        let declared: BTreeSet<&str> = ["a"].into_iter().collect();
        let problems = check(&env, "bad.html", src, &declared);
        assert_eq!(
            problems,
            vec![
                "bad.html: unknown filter `urlencodee`",
                "bad.html: unknown test `frobbed`",
                "bad.html: unknown function `nosuch`",
                "bad.html: variable `typo` is not in the page's declared context",
            ]
        );
        let good = "{{ a | escape }}{% if a is defined %}{{ range(2) | length }}{% endif %}";
        env.add_template("good.html", good).unwrap();
        assert!(check(&env, "good.html", good, &declared).is_empty());
    }
}
