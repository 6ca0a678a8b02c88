//! The compact binary record of a trace, shared by the WAL (one record per payload) and the
//! stored-traces sidecar (records grouped into compressed blocks).
//!
//! A record is every column of [`COLUMNS`] in table order: integers as zigzag varints, booleans one
//! byte, text `varint(len + 1)` then the UTF-8 bytes (0: null), lists of text `varint(count + 1)`
//! (0: null) then each item as `varint(len)` and bytes.

use crate::columns::{blank_trace, Access, COLUMNS};
use cts_model::Trace;

/// Appends the binary record of `trace`: every column of [`COLUMNS`] in order. Integers are zigzag
/// varints, booleans one byte, text `varint(len + 1)` then the bytes (0: null), lists of text
/// `varint(count + 1)` (0: null) then each item as `varint(len)` and bytes.
pub(crate) fn encode_trace(trace: &Trace, out: &mut Vec<u8>) {
    for column in COLUMNS {
        match column.access {
            Access::Int64 { get, .. } => {
                let value = get(trace);
                put_varint(out, ((value << 1) ^ (value >> 63)) as u64);
            }
            Access::Bool { get, .. } => out.push(u8::from(get(trace))),
            Access::Text { get, .. } => match get(trace) {
                Some(text) => {
                    put_varint(out, text.len() as u64 + 1);
                    out.extend_from_slice(text.as_bytes());
                }
                None => out.push(0),
            },
            Access::TextList { get, .. } => match get(trace) {
                Some(items) => {
                    put_varint(out, items.len() as u64 + 1);
                    for item in items {
                        put_varint(out, item.len() as u64);
                        out.extend_from_slice(item.as_bytes());
                    }
                }
                None => out.push(0),
            },
        }
    }
}

/// Decodes one record written by [`encode_trace`] from the front of `bytes`, advancing it.
pub(crate) fn decode_trace(bytes: &mut &[u8]) -> Result<Trace, String> {
    let mut trace = blank_trace();
    for column in COLUMNS {
        let in_column = |reason: &str| format!("column {}: {reason}", column.name);
        match column.access {
            Access::Int64 { set, .. } => {
                let raw = take_varint(bytes).ok_or_else(|| in_column("truncated integer"))?;
                set(&mut trace, ((raw >> 1) as i64) ^ -((raw & 1) as i64));
            }
            Access::Bool { set, .. } => {
                let (&byte, rest) = bytes.split_first().ok_or_else(|| in_column("truncated boolean"))?;
                *bytes = rest;
                set(&mut trace, byte != 0);
            }
            Access::Text { set, .. } => {
                let marker = take_varint(bytes).ok_or_else(|| in_column("truncated length"))?;
                if marker > 0 {
                    let text = take_text(bytes, marker - 1).map_err(|reason| in_column(&reason))?;
                    set(&mut trace, text).map_err(|reason| in_column(&reason))?;
                }
            }
            Access::TextList { set, .. } => {
                let marker = take_varint(bytes).ok_or_else(|| in_column("truncated count"))?;
                if marker > 0 {
                    let mut items = Vec::new();
                    for _ in 0..marker - 1 {
                        let len = take_varint(bytes).ok_or_else(|| in_column("truncated length"))?;
                        items.push(take_text(bytes, len).map_err(|reason| in_column(&reason))?.to_owned());
                    }
                    set(&mut trace, items);
                }
            }
        }
    }
    Ok(trace)
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

pub(crate) fn take_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for (index, &byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte < 0x80 {
            *bytes = &bytes[index + 1..];
            return Some(value);
        }
    }
    None
}

fn take_text<'a>(bytes: &mut &'a [u8], len: u64) -> Result<&'a str, String> {
    let len = usize::try_from(len).map_err(|_| "a text longer than memory".to_owned())?;
    if bytes.len() < len {
        return Err("truncated text".to_owned());
    }
    let (text, rest) = bytes.split_at(len);
    *bytes = rest;
    std::str::from_utf8(text).map_err(|e| e.to_string())
}

/// Binary records back to back (recovered WAL records, a sidecar being rebuilt, tests).
#[derive(Debug, Default)]
pub(crate) struct RecordBuffer {
    pub bytes: Vec<u8>,
    /// End offset in `bytes` of each record.
    ends: Vec<usize>,
}

impl RecordBuffer {
    pub(crate) fn push_trace(&mut self, trace: &Trace) {
        encode_trace(trace, &mut self.bytes);
        self.ends.push(self.bytes.len());
    }

    /// Where record `index` lies in `bytes`.
    pub(crate) fn range(&self, index: usize) -> std::ops::Range<usize> {
        range_of(&self.ends, index)
    }

    /// Every record, in order.
    pub(crate) fn records(&self) -> Vec<&[u8]> {
        (0..self.ends.len()).map(|index| &self.bytes[self.range(index)]).collect()
    }
}

/// Where item `index` lies in bytes holding items back to back that end at `ends`.
pub(crate) fn range_of(ends: &[usize], index: usize) -> std::ops::Range<usize> {
    (if index == 0 { 0 } else { ends[index - 1] })..ends[index]
}

/// Decodes a record that must span all of `record`.
pub(crate) fn decode_whole(mut record: &[u8]) -> Result<Trace, String> {
    let trace = decode_trace(&mut record)?;
    match record.is_empty() {
        true => Ok(trace),
        false => Err(format!("{} bytes after the record", record.len())),
    }
}

#[cfg(test)]
mod tests;
