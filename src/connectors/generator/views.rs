//! Building `Utf8View` columns without a `String` per row.
//!
//! A view of at most 12 bytes holds its bytes inline; a longer one points into
//! a buffer. Generated strings are mostly picks from fixed lists (channels,
//! cities, URLs) or slices of a pool of random text, so their views are
//! computed once and only the 16-byte view is written per row. Strings made
//! per row (emails, credit cards) are appended to a per-batch buffer.

use std::sync::Arc;

use arrow::array::builder::make_view;
use arrow::array::{ArrayRef, StringViewArray};
use arrow::buffer::{Buffer, ScalarBuffer};

/// Strings stored once, each addressable by index as a view into buffer 0.
#[derive(Debug, Clone)]
pub struct StringPool {
    /// The concatenated strings.
    buffer: Buffer,
    /// One view per string, pointing into `buffer` as block 0.
    views: Vec<u128>,
}

impl StringPool {
    /// A pool of `strings`, in order.
    pub fn new<S: AsRef<str>>(strings: impl IntoIterator<Item = S>) -> Self {
        let mut bytes = Vec::new();
        let mut spans = Vec::new();
        for s in strings {
            let s = s.as_ref().as_bytes();
            spans.push((bytes.len(), s.len()));
            bytes.extend_from_slice(s);
        }
        let views = spans
            .iter()
            .map(|&(offset, len)| make_view(&bytes[offset..offset + len], 0, offset as u32))
            .collect();
        Self {
            buffer: Buffer::from_vec(bytes),
            views,
        }
    }

    /// The view of string `i` (block 0).
    #[inline(always)]
    pub fn view(&self, i: usize) -> u128 {
        self.views[i]
    }

    /// How many strings the pool holds.
    pub fn len(&self) -> usize {
        self.views.len()
    }

    /// The buffer to hand to a column as block 0.
    pub fn buffer(&self) -> &Buffer {
        &self.buffer
    }
}

/// Random ASCII text that columns slice at random offsets: random strings at
/// the cost of one view per row.
#[derive(Debug, Clone)]
pub struct TextPool {
    /// ASCII bytes only, so every slice is valid UTF-8.
    buffer: Buffer,
}

impl TextPool {
    /// `len` bytes, each from `next` (which must give ASCII).
    pub fn new(len: usize, mut next: impl FnMut() -> u8) -> Self {
        let bytes: Vec<u8> = (0..len).map(|_| next()).collect();
        assert!(
            bytes.is_ascii(),
            "text pools are ASCII, so that any slice is UTF-8"
        );
        Self {
            buffer: Buffer::from_vec(bytes),
        }
    }

    /// The pool's size in bytes.
    pub fn len(&self) -> usize {
        self.buffer.len()
    }

    /// The view of `len` bytes at `offset` (block 0), trimmed of spaces at
    /// both ends when `trim`. `offset + len` must be within the pool.
    #[inline(always)]
    pub fn slice(&self, offset: usize, len: usize, trim: bool) -> u128 {
        let mut bytes = &self.buffer.as_slice()[offset..offset + len];
        let mut offset = offset;
        if trim {
            while let [b' ', rest @ ..] = bytes {
                bytes = rest;
                offset += 1;
            }
            while let [rest @ .., b' '] = bytes {
                bytes = rest;
            }
        }
        make_view(bytes, 0, offset as u32)
    }

    /// The buffer to hand to a column as block 0.
    pub fn buffer(&self) -> &Buffer {
        &self.buffer
    }
}

/// A `Utf8View` column being built: views into an optional shared buffer
/// (block 0) and a per-batch buffer for strings made row by row.
#[derive(Debug)]
pub struct ViewColumn {
    /// One view per row.
    views: Vec<u128>,
    /// The shared buffer the pooled views point into.
    shared: Option<Buffer>,
    /// Bytes of strings made for this batch.
    scratch: Vec<u8>,
}

impl ViewColumn {
    /// A column whose pooled views point into `shared` (block 0).
    pub fn new(capacity: usize, shared: Option<&Buffer>) -> Self {
        Self {
            views: Vec::with_capacity(capacity),
            shared: shared.cloned(),
            scratch: Vec::new(),
        }
    }

    /// Append a view into the shared buffer (or an inline view).
    #[inline(always)]
    pub fn push_view(&mut self, view: u128) {
        self.views.push(view);
    }

    /// Append a string made for this row.
    #[inline(always)]
    pub fn push_str(&mut self, s: &str) {
        let block = u32::from(self.shared.is_some());
        let view = make_view(s.as_bytes(), block, self.scratch.len() as u32);
        if s.len() > 12 {
            self.scratch.extend_from_slice(s.as_bytes());
        }
        self.views.push(view);
    }

    /// The finished array.
    pub fn finish(self) -> ArrayRef {
        let mut buffers: Vec<Buffer> = self.shared.into_iter().collect();
        if !self.scratch.is_empty() {
            buffers.push(Buffer::from_vec(self.scratch));
        }
        let views = ScalarBuffer::from(self.views);
        // SAFETY: every view was made by `make_view` over bytes of a `&str`, a
        // `StringPool` (built from `&str`s) or a `TextPool` (ASCII only, so any
        // slice is UTF-8); pooled views point into the shared buffer, which
        // is block 0, and scratch views into the scratch buffer, pushed after
        // it, at offsets recorded as it grew.
        let array = unsafe { StringViewArray::new_unchecked(views, buffers, None) };
        Arc::new(array)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::generator::rng::Rng;
    use arrow::array::Array;

    #[test]
    fn pooled_sliced_and_scratch_strings_read_back() {
        let pool = StringPool::new(["Google", "https://www.nexmark.com/abc/item.htm"]);
        let mut col = ViewColumn::new(4, Some(pool.buffer()));
        col.push_view(pool.view(1));
        col.push_view(pool.view(0));
        col.push_str("a string longer than twelve bytes");
        col.push_str("short");
        let array = col.finish();
        let strings = array
            .as_any()
            .downcast_ref::<StringViewArray>()
            .expect("string view");
        StringViewArray::try_new(strings.views().clone(), strings.data_buffers().to_vec(), None)
            .expect("valid views");
        let values: Vec<&str> = strings.iter().map(|s| s.unwrap_or_default()).collect();
        assert_eq!(
            values,
            [
                "https://www.nexmark.com/abc/item.htm",
                "Google",
                "a string longer than twelve bytes",
                "short"
            ]
        );

        let mut rng = Rng::new(1, 1);
        let text = TextPool::new(1000, || b"ab "[rng.below(3) as usize]);
        let mut col = ViewColumn::new(100, Some(text.buffer()));
        for i in 0..100 {
            col.push_view(text.slice(i * 7, 3 + i % 40, true));
        }
        let array = col.finish();
        let strings = array
            .as_any()
            .downcast_ref::<StringViewArray>()
            .expect("string view");
        StringViewArray::try_new(strings.views().clone(), strings.data_buffers().to_vec(), None)
            .expect("valid views");
        for s in strings.iter().flatten() {
            assert!(!s.starts_with(' ') && !s.ends_with(' '), "{s:?}");
        }
    }
}
