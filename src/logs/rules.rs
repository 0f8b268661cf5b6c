//! Processing rules: `exclude_at_match`, `include_at_match`, `mask_sequences`,
//! `exclude_truncated`, and the `multi_line` rule the decoder aggregates with.

use regex::bytes::Regex;
use std::borrow::Cow;
use std::fmt;

/// Processing rules, applied in order to each decoded message.
///
/// Built from the Agent's JSON format (the value of `DD_LOGS_CONFIG_PROCESSING_RULES`, or a
/// source's `log_processing_rules`):
///
/// ```
/// use dogpipe::{ProcessingRules, RuleScope};
///
/// let rules = ProcessingRules::from_json(
///     r#"[{"type":"exclude_at_match","name":"no_debug","pattern":"DEBUG"},
///         {"type":"mask_sequences","name":"tokens","pattern":"token=\\w+",
///          "replace_placeholder":"token=[REDACTED]"}]"#,
///     RuleScope::Source,
/// ).unwrap();
/// assert_eq!(rules.apply(b"DEBUG x", false), None);
/// assert_eq!(rules.apply(b"call token=abc123", false).unwrap().as_ref(), b"call token=[REDACTED]");
/// ```
///
/// Patterns use Go's RE2 syntax, compiled with Rust's `regex` crate (the same RE2 family: linear
/// time, same syntax for everything the Agent's users write). Differences are handled so that
/// matches agree with Go:
///
/// * `\d`, `\w`, `\s` (and `\D`, `\W`, `\S`) are ASCII-only in Go but Unicode in Rust: they are
///   rewritten to `[0-9]`, `[0-9A-Za-z_]`, `[\t\n\f\r ]` (and their negations); `\b` and `\B` to
///   their ASCII forms. Rust's ASCII `\s` would also match `\v`, which Go's does not.
/// * Go's `\Q…\E` quoting is not supported by Rust: such a pattern is rejected when loading, with
///   an error naming the rule, rather than matching differently.
/// * Go matches an invalid UTF-8 byte as U+FFFD with `.` and negated classes; Rust does not match
///   invalid bytes there. Only non-UTF-8 content (CRI or plain files) can differ.
/// * Replacements use `$1`, `${name}` and `$$` as in Go.
#[derive(Debug, Clone, Default)]
pub struct ProcessingRules {
    rules: Vec<Rule>,
    multi_line: Option<Regex>,
}

#[derive(Debug, Clone)]
struct Rule {
    kind: RuleKind,
}

#[derive(Debug, Clone)]
enum RuleKind {
    ExcludeAtMatch(Regex),
    IncludeAtMatch(Regex),
    MaskSequences(Regex, Vec<u8>),
    ExcludeTruncated,
}

/// Where rules come from: the Agent rejects `multi_line` in global rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleScope {
    /// `logs_config.processing_rules` / `DD_LOGS_CONFIG_PROCESSING_RULES`.
    Global,
    /// A source's `log_processing_rules`.
    Source,
}

/// Why processing rules could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    index: Option<usize>,
    kind: RuleErrorKind,
}

/// The kind of a [`RuleError`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RuleErrorKind {
    /// The text is not JSON; holds the JSON error.
    InvalidJson(String),
    /// The JSON is not an array of objects.
    NotAnArray,
    /// A rule has no non-empty string `name`.
    MissingName,
    /// A rule has no string `type`.
    MissingType,
    /// A rule's `type` is not one of the five known types; holds it.
    UnknownType(String),
    /// A rule that needs a `pattern` has none (or an empty one).
    MissingPattern,
    /// A `mask_sequences` rule has no string `replace_placeholder`.
    MissingPlaceholder,
    /// The pattern does not compile; holds the regex error.
    InvalidPattern(String),
    /// A `multi_line` rule in global rules (allowed per source only).
    MultiLineInGlobalRules,
    /// More than one `multi_line` rule.
    SeveralMultiLineRules,
}

impl RuleError {
    /// What is wrong.
    pub fn kind(&self) -> &RuleErrorKind {
        &self.kind
    }

    /// Index of the faulty rule in the array, if the error concerns one rule.
    pub fn index(&self) -> Option<usize> {
        self.index
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use RuleErrorKind::*;
        if let Some(i) = self.index {
            write!(f, "processing rule #{i}: ")?;
        } else {
            write!(f, "processing rules: ")?;
        }
        match &self.kind {
            InvalidJson(e) => write!(f, "not valid JSON ({e})"),
            NotAnArray => write!(f, "expected a JSON array of rule objects"),
            MissingName => write!(f, "every rule needs a non-empty \"name\""),
            MissingType => write!(f, "every rule needs a \"type\""),
            UnknownType(t) => write!(
                f,
                "type {t:?} is not supported (use exclude_at_match, include_at_match, \
                 mask_sequences, exclude_truncated or multi_line)"
            ),
            MissingPattern => write!(f, "this rule type needs a non-empty \"pattern\""),
            MissingPlaceholder => write!(f, "mask_sequences needs a \"replace_placeholder\""),
            InvalidPattern(e) => write!(f, "the pattern does not compile: {e}"),
            MultiLineInGlobalRules => write!(
                f,
                "multi_line rules are only allowed in a source's log_processing_rules"
            ),
            SeveralMultiLineRules => write!(f, "only one multi_line rule is allowed per source"),
        }
    }
}

impl std::error::Error for RuleError {}

impl ProcessingRules {
    /// No rules.
    pub fn new() -> ProcessingRules {
        ProcessingRules::default()
    }

    /// Loads rules from the Agent's JSON format: an array of objects with `type`, `name`,
    /// `pattern` and, for `mask_sequences`, `replace_placeholder`. An empty string is no rules.
    ///
    /// # Errors
    ///
    /// [`RuleError`] naming the first faulty rule.
    pub fn from_json(json: &str, scope: RuleScope) -> Result<ProcessingRules, RuleError> {
        if json.trim().is_empty() {
            return Ok(ProcessingRules::default());
        }
        let value: serde_json::Value = serde_json::from_str(json).map_err(|e| RuleError {
            index: None,
            kind: RuleErrorKind::InvalidJson(e.to_string()),
        })?;
        ProcessingRules::from_value(&value, scope)
    }

    /// Loads rules from an already parsed JSON value (an array of rule objects), as
    /// [`from_json`](Self::from_json) does.
    pub(crate) fn from_value(
        value: &serde_json::Value,
        scope: RuleScope,
    ) -> Result<ProcessingRules, RuleError> {
        let array = value.as_array().ok_or(RuleError {
            index: None,
            kind: RuleErrorKind::NotAnArray,
        })?;
        let mut rules = ProcessingRules::default();
        for (index, item) in array.iter().enumerate() {
            let err = |kind| RuleError {
                index: Some(index),
                kind,
            };
            let object = item.as_object().ok_or(RuleError {
                index: None,
                kind: RuleErrorKind::NotAnArray,
            })?;
            let field = |name: &str| object.get(name).and_then(serde_json::Value::as_str);
            if field("name").is_none_or(str::is_empty) {
                return Err(err(RuleErrorKind::MissingName));
            }
            let kind = field("type").ok_or(err(RuleErrorKind::MissingType))?;
            let pattern = || match field("pattern") {
                Some(p) if !p.is_empty() => Ok(p),
                _ => Err(err(RuleErrorKind::MissingPattern)),
            };
            let compile = |p: &str| {
                Regex::new(&go_compatible(p))
                    .map_err(|e| err(RuleErrorKind::InvalidPattern(e.to_string())))
            };
            let rule = match kind {
                "exclude_at_match" => RuleKind::ExcludeAtMatch(compile(pattern()?)?),
                "include_at_match" => RuleKind::IncludeAtMatch(compile(pattern()?)?),
                "mask_sequences" => {
                    let re = compile(pattern()?)?;
                    let placeholder = field("replace_placeholder")
                        .ok_or(err(RuleErrorKind::MissingPlaceholder))?;
                    RuleKind::MaskSequences(re, placeholder.as_bytes().to_vec())
                }
                "exclude_truncated" => RuleKind::ExcludeTruncated,
                "multi_line" => {
                    if scope == RuleScope::Global {
                        return Err(err(RuleErrorKind::MultiLineInGlobalRules));
                    }
                    if rules.multi_line.is_some() {
                        return Err(err(RuleErrorKind::SeveralMultiLineRules));
                    }
                    // The Agent compiles "^" + pattern, literally.
                    rules.multi_line = Some(compile(&format!("^{}", pattern()?))?);
                    continue;
                }
                other => return Err(err(RuleErrorKind::UnknownType(other.to_string()))),
            };
            rules.rules.push(Rule { kind: rule });
        }
        Ok(rules)
    }

    /// These rules followed by `then`'s (global rules first, then the source's).
    pub fn followed_by(mut self, then: ProcessingRules) -> ProcessingRules {
        self.rules.extend(then.rules);
        self.multi_line = then.multi_line.or(self.multi_line);
        self
    }

    /// Whether there are no rules at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.multi_line.is_none()
    }

    /// The compiled `multi_line` pattern (`^` + the rule's pattern), if any.
    pub(crate) fn multi_line(&self) -> Option<&Regex> {
        self.multi_line.as_ref()
    }

    /// Applies the rules (except `multi_line`) in order to a message's content; `None` when a rule
    /// drops it. Borrows the content unless a mask matched.
    pub fn apply<'a>(&self, content: &'a [u8], truncated: bool) -> Option<Cow<'a, [u8]>> {
        let mut content = Cow::Borrowed(content);
        for rule in &self.rules {
            match &rule.kind {
                RuleKind::ExcludeAtMatch(re) => {
                    if re.is_match(&content) {
                        return None;
                    }
                }
                RuleKind::IncludeAtMatch(re) => {
                    if !re.is_match(&content) {
                        return None;
                    }
                }
                RuleKind::MaskSequences(re, placeholder) => {
                    if let Cow::Owned(masked) = re.replace_all(&content, placeholder.as_slice()) {
                        content = Cow::Owned(masked);
                    }
                }
                RuleKind::ExcludeTruncated => {
                    if truncated {
                        return None;
                    }
                }
            }
        }
        Some(content)
    }
}

/// Rewrites Go's ASCII-only Perl classes for Rust's Unicode-aware `regex`.
pub(crate) fn go_compatible(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => out.push_str("[0-9]"),
            Some('D') => out.push_str("[^0-9]"),
            Some('w') => out.push_str("[0-9A-Za-z_]"),
            Some('W') => out.push_str("[^0-9A-Za-z_]"),
            Some('s') => out.push_str("[\\t\\n\\f\\r ]"),
            Some('S') => out.push_str("[^\\t\\n\\f\\r ]"),
            Some('b') => out.push_str("(?-u:\\b)"),
            Some('B') => out.push_str("(?-u:\\B)"),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(json: &str) -> ProcessingRules {
        ProcessingRules::from_json(json, RuleScope::Source).unwrap()
    }

    fn error(json: &str, scope: RuleScope) -> RuleError {
        ProcessingRules::from_json(json, scope).unwrap_err()
    }

    #[test]
    fn applies_rules_in_order_on_the_output_of_the_previous_one() {
        let r = rules(
            r#"[{"type":"mask_sequences","name":"m","pattern":"secret","replace_placeholder":"DEBUG"},
                {"type":"exclude_at_match","name":"e","pattern":"DEBUG"}]"#,
        );
        assert_eq!(r.apply(b"a secret", false), None);
        assert_eq!(r.apply(b"fine", false).unwrap().as_ref(), b"fine");
    }

    #[test]
    fn several_include_rules_act_as_and() {
        let r = rules(
            r#"[{"type":"include_at_match","name":"a","pattern":"ERROR"},
                {"type":"include_at_match","name":"b","pattern":"db"}]"#,
        );
        assert!(r.apply(b"ERROR db down", false).is_some());
        assert!(r.apply(b"ERROR cache", false).is_none());
        assert!(r.apply(b"INFO db", false).is_none());
    }

    #[test]
    fn masks_with_go_replacement_syntax() {
        let r = rules(
            r#"[{"type":"mask_sequences","name":"m","pattern":"(?P<k>key)=(\\w+)","replace_placeholder":"${k}=[$2 hidden] $$"}]"#,
        );
        assert_eq!(
            r.apply(b"key=abc key=d", false).unwrap().as_ref(),
            b"key=[abc hidden] $ key=[d hidden] $"
        );
    }

    #[test]
    fn borrows_the_content_when_nothing_is_masked() {
        let r = rules(
            r#"[{"type":"mask_sequences","name":"m","pattern":"x","replace_placeholder":"y"}]"#,
        );
        assert!(matches!(r.apply(b"abc", false), Some(Cow::Borrowed(_))));
    }

    #[test]
    fn exclude_truncated_drops_only_truncated_messages() {
        let r = rules(r#"[{"type":"exclude_truncated","name":"t"}]"#);
        assert!(r.apply(b"x", true).is_none());
        assert!(r.apply(b"x", false).is_some());
    }

    #[test]
    fn perl_classes_are_ascii_only_like_go() {
        let r = rules(r#"[{"type":"exclude_at_match","name":"d","pattern":"^\\d+$"}]"#);
        assert!(
            r.apply("١٢٣".as_bytes(), false).is_some(),
            "Arabic digits are not \\d in Go"
        );
        assert!(r.apply(b"123", false).is_none());
        let r = rules(r#"[{"type":"exclude_at_match","name":"w","pattern":"^\\w+$"}]"#);
        assert!(r.apply("héllo".as_bytes(), false).is_some());
        let r = rules(r#"[{"type":"exclude_at_match","name":"s","pattern":"a\\sb"}]"#);
        assert!(r.apply(b"a\x0bb", false).is_some(), "\\v is not \\s in Go");
        assert!(r.apply("a\u{a0}b".as_bytes(), false).is_some());
        assert!(r.apply(b"a\tb", false).is_none());
        let r = rules(r#"[{"type":"exclude_at_match","name":"b","pattern":"\\bé"}]"#);
        assert!(
            r.apply("xé".as_bytes(), false).is_none(),
            "é is not a word char in Go"
        );
        let r = rules(r#"[{"type":"exclude_at_match","name":"c","pattern":"[\\d\\s]x"}]"#);
        assert!(r.apply(b"1x", false).is_none());
        assert!(r.apply(b" x", false).is_none());
        assert!(r.apply("٣x".as_bytes(), false).is_some());
    }

    #[test]
    fn escaped_backslashes_are_not_rewritten() {
        assert_eq!(go_compatible(r"\\d"), r"\\d");
        assert_eq!(go_compatible(r"\pL\d"), r"\pL[0-9]");
    }

    #[test]
    fn multi_line_is_anchored_by_prefixing_a_caret() {
        let r = rules(r#"[{"type":"multi_line","name":"ml","pattern":"\\d{4}-"}]"#);
        let re = r.multi_line().unwrap();
        assert!(re.is_match(b"2024-05-01 x"));
        assert!(!re.is_match(b"at 2024-05-01"));
    }

    #[test]
    fn global_rules_come_first() {
        let global = ProcessingRules::from_json(
            r#"[{"type":"mask_sequences","name":"g","pattern":"a","replace_placeholder":"b"}]"#,
            RuleScope::Global,
        )
        .unwrap();
        let source = rules(r#"[{"type":"exclude_at_match","name":"s","pattern":"b"}]"#);
        let all = global.followed_by(source);
        assert!(all.apply(b"a", false).is_none());
    }

    #[test]
    fn rejects_invalid_rules_with_a_message_naming_the_rule() {
        use RuleErrorKind::*;
        let g = RuleScope::Global;
        assert!(matches!(error("{", g).kind(), InvalidJson(_)));
        assert_eq!(error("{}", g).kind(), &NotAnArray);
        assert_eq!(
            error(r#"[{"type":"exclude_at_match","pattern":"x"}]"#, g).kind(),
            &MissingName
        );
        assert_eq!(
            error(r#"[{"name":"n","pattern":"x"}]"#, g).kind(),
            &MissingType
        );
        assert_eq!(
            error(r#"[{"name":"n","type":"drop"}]"#, g).kind(),
            &UnknownType("drop".into())
        );
        assert_eq!(
            error(
                r#"[{"name":"n","type":"include_at_match","pattern":""}]"#,
                g
            )
            .kind(),
            &MissingPattern
        );
        assert_eq!(
            error(r#"[{"name":"n","type":"mask_sequences","pattern":"x"}]"#, g).kind(),
            &MissingPlaceholder
        );
        let e = error(
            r#"[{"name":"a","type":"exclude_truncated"},{"name":"n","type":"exclude_at_match","pattern":"("}]"#,
            g,
        );
        assert_eq!(e.index(), Some(1));
        assert!(
            e.to_string()
                .starts_with("processing rule #1: the pattern does not compile")
        );
        assert_eq!(
            error(r#"[{"name":"n","type":"multi_line","pattern":"x"}]"#, g).kind(),
            &MultiLineInGlobalRules
        );
        assert!(matches!(
            error(
                r#"[{"name":"n","type":"exclude_at_match","pattern":"\\Qa.b\\E"}]"#,
                g
            )
            .kind(),
            InvalidPattern(_)
        ));
        assert!(ProcessingRules::from_json("  ", g).unwrap().is_empty());
    }
}
