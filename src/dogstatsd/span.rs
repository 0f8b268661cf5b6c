/// A byte range of a message, kept instead of a slice so that a parsed message can be re-bound to
/// an owned copy of its line (see [`OwnedMessage`](crate::OwnedMessage)) without parsing again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// `start..end`; callers guarantee `start <= end <= line.len() <= u32::MAX` (the parser
    /// rejects longer lines before building spans).
    #[inline]
    pub(crate) fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    /// The bytes of `line` this span covers; empty if the span does not fit `line`, which cannot
    /// happen for a span built over the same line.
    #[inline]
    pub(crate) fn get(self, line: &[u8]) -> &[u8] {
        line.get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }

    pub(crate) fn end(self) -> usize {
        self.end as usize
    }
}
