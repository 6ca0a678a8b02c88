//! C2SP tlog-tiles paths: `tile/<L>/<N>[.p/<W>]` (hash tiles) and `tile/entries/<N>[.p/<W>]` (entry
//! bundles), `<N>` written as 3-digit path elements, all but the last prefixed with `x`
//! (1234067 → `x001/x234/067`).

use crate::error::LedgerError;
use crate::log::TILE_WIDTH;

/// The highest tile level a 64-bit tree can have.
const MAX_LEVEL: u32 = 7;

/// A tile a client asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TileRequest {
    Hashes { level: u32, index: u64, width: u64 },
    Entries { index: u64, width: u64 },
}

/// `<N>` in path form.
pub fn encode_index(index: u64) -> String {
    let mut groups = Vec::new();
    let mut rest = index;
    loop {
        groups.push(rest % 1000);
        rest /= 1000;
        if rest == 0 {
            break;
        }
    }
    let last = groups.len() - 1;
    groups
        .iter()
        .rev()
        .enumerate()
        .map(|(i, g)| if i < last { format!("x{g:03}") } else { format!("{g:03}") })
        .collect::<Vec<_>>()
        .join("/")
}

/// The path of a tile, below `tile/`.
pub fn tile_path(request: TileRequest) -> String {
    let (prefix, index, width) = match request {
        TileRequest::Hashes { level, index, width } => (level.to_string(), index, width),
        TileRequest::Entries { index, width } => ("entries".to_owned(), index, width),
    };
    let partial = if width < TILE_WIDTH { format!(".p/{width}") } else { String::new() };
    format!("{prefix}/{}{partial}", encode_index(index))
}

/// Parses a path below `tile/`.
pub fn parse_tile_path(path: &str) -> Result<TileRequest, LedgerError> {
    let invalid = || LedgerError::invalid("tile path", format!("{path:?} is not tile/<L>/<N>[.p/<W>]"));
    let (path, width) = match path.split_once(".p/") {
        Some((path, width)) => {
            let width: u64 = parse_digits(width, 3).ok_or_else(invalid)?;
            if width == 0 || width >= TILE_WIDTH {
                return Err(invalid());
            }
            (path, width)
        }
        None => (path, TILE_WIDTH),
    };
    let (first, elements) = path.split_once('/').ok_or_else(invalid)?;
    let elements: Vec<&str> = elements.split('/').collect();
    let (last, leading) = elements.split_last().ok_or_else(invalid)?;
    let mut index: u64 = 0;
    for element in leading {
        let group = element.strip_prefix('x').and_then(|g| (g.len() == 3).then(|| parse_digits(g, 3)).flatten());
        index = index.checked_mul(1000).and_then(|i| i.checked_add(group?)).ok_or_else(invalid)?;
    }
    let group = (last.len() == 3).then(|| parse_digits(last, 3)).flatten().ok_or_else(invalid)?;
    index = index.checked_mul(1000).and_then(|i| i.checked_add(group)).ok_or_else(invalid)?;
    if leading.first().is_some_and(|element| *element == "x000") {
        return Err(invalid());
    }
    if first == "entries" {
        return Ok(TileRequest::Entries { index, width });
    }
    let level: u32 = parse_digits(first, 1).filter(|&level| level <= u64::from(MAX_LEVEL)).ok_or_else(invalid)? as u32;
    Ok(TileRequest::Hashes { level, index, width })
}

/// A decimal number of at most `max_len` digits, without sign or leading `+`.
fn parse_digits(text: &str, max_len: usize) -> Option<u64> {
    (!text.is_empty() && text.len() <= max_len && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_are_written_in_groups_of_three() {
        let cases = [(0, "000"), (5, "005"), (999, "999"), (1000, "x001/000"), (1_234_067, "x001/x234/067")];
        for (index, expected) in cases {
            assert_eq!(encode_index(index), expected);
        }
    }

    #[test]
    fn paths_round_trip_and_malformed_ones_are_refused() {
        let requests = [
            TileRequest::Hashes { level: 0, index: 1_234_067, width: 256 },
            TileRequest::Hashes { level: 2, index: 0, width: 7 },
            TileRequest::Entries { index: 1000, width: 255 },
            TileRequest::Entries { index: 3, width: 256 },
        ];
        for request in requests {
            assert_eq!(parse_tile_path(&tile_path(request)).unwrap(), request, "{}", tile_path(request));
        }
        assert_eq!(tile_path(requests[0]), "0/x001/x234/067");
        assert_eq!(tile_path(requests[2]), "entries/x001/000.p/255");
        for bad in [
            "0/1",
            "0/0001",
            "8/000",
            "0/x001",
            "0/001/002",
            "0/000.p/0",
            "0/000.p/256",
            "0/x000/001",
            "x/000",
            "0/000.p/",
        ] {
            assert!(parse_tile_path(bad).is_err(), "{bad}");
        }
    }
}
