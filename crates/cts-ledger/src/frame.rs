//! The framing of the ledger's append-only files: `[u32 LE length][u32 LE crc32c(payload)][payload]`.
//! A reader stops at the first frame that is incomplete or fails its checksum: a torn tail.

use std::io::{self, Read};

pub(crate) const HEADER_LEN: usize = 8;
/// Longer frames are treated as torn (a checkpoint note or an entry is far smaller).
const MAX_FRAME_LEN: usize = 1 << 20;

/// Appends `payload` as one frame to `out`.
pub(crate) fn push_frame(payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).expect("frames are small");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Reads frames one at a time from a stream, tracking where the valid frames end.
pub(crate) struct FrameReader<R> {
    inner: R,
    /// Bytes of the complete, valid frames read so far.
    pub valid_len: u64,
    payload: Vec<u8>,
}

impl<R: Read> FrameReader<R> {
    pub(crate) fn new(inner: R) -> FrameReader<R> {
        FrameReader { inner, valid_len: 0, payload: Vec::new() }
    }

    /// The next valid frame's payload; `None` at the end or at a torn or damaged frame.
    pub(crate) fn next_frame(&mut self) -> io::Result<Option<&[u8]>> {
        let mut header = [0u8; HEADER_LEN];
        if !read_full(&mut self.inner, &mut header)? {
            return Ok(None);
        }
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        if len == 0 || len > MAX_FRAME_LEN {
            return Ok(None);
        }
        self.payload.resize(len, 0);
        if !read_full(&mut self.inner, &mut self.payload)? || crc32c::crc32c(&self.payload) != crc {
            return Ok(None);
        }
        self.valid_len += (HEADER_LEN + len) as u64;
        Ok(Some(&self.payload))
    }
}

/// Fills `buffer`; `false` when the stream ends first.
fn read_full(reader: &mut impl Read, buffer: &mut [u8]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => return Ok(false),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// The payloads of every valid frame in `bytes` (all of them; a bad one is an error with its offset).
pub(crate) fn frames_of(bytes: &[u8]) -> Result<Vec<&[u8]>, usize> {
    let mut frames = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let header = bytes.get(at..at + HEADER_LEN).ok_or(at)?;
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        let payload = bytes.get(at + HEADER_LEN..at + HEADER_LEN + len).ok_or(at)?;
        if len == 0 || crc32c::crc32c(payload) != crc {
            return Err(at);
        }
        frames.push(payload);
        at += HEADER_LEN + len;
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cut_of_a_file_keeps_exactly_its_complete_frames() {
        let payloads: Vec<Vec<u8>> = (1..6).map(|n| vec![n as u8; n * 3]).collect();
        let mut bytes = Vec::new();
        let mut ends = Vec::new();
        for payload in &payloads {
            push_frame(payload, &mut bytes);
            ends.push(bytes.len() as u64);
        }
        for cut in 0..=bytes.len() {
            let mut reader = FrameReader::new(&bytes[..cut]);
            let mut read = Vec::new();
            while let Some(payload) = reader.next_frame().unwrap() {
                read.push(payload.to_vec());
            }
            let complete = ends.iter().filter(|&&end| end <= cut as u64).count();
            assert_eq!(read, payloads[..complete], "cut at {cut}");
            assert_eq!(reader.valid_len, if complete == 0 { 0 } else { ends[complete - 1] });
        }
        let mut damaged = bytes.clone();
        damaged[ends[1] as usize + HEADER_LEN] ^= 1;
        assert_eq!(frames_of(&damaged), Err(ends[1] as usize));
        assert_eq!(frames_of(&bytes).unwrap().len(), 5);
    }
}
