//! Checksummed frames: `payload length (u32 LE), CRC-32C of the length and payload (u32
//! LE), payload`. The feed's article log and a batch run's checkpoint store their records
//! in them, so that a write torn by a crash or a kill is found and cut off, never read as
//! data.

use std::io::{self, Read};

/// Bytes of a frame's header.
pub(crate) const HEADER_BYTES: usize = 8;

/// Starts a frame at the end of `out`; returns where it starts, for [`seal`].
pub(crate) fn open(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0u8; HEADER_BYTES]);
    start
}

/// Writes the header of the frame [`open`] started at `start`: its payload is the rest of
/// `out`.
pub(crate) fn seal(out: &mut [u8], start: usize) {
    let payload_len = u32::try_from(out.len() - start - HEADER_BYTES)
        .expect("a frame's payload fits in u32 bytes");
    out[start..start + 4].copy_from_slice(&payload_len.to_le_bytes());
    let sum = checksum(payload_len, &out[start + HEADER_BYTES..]);
    out[start + 4..start + 8].copy_from_slice(&sum.to_le_bytes());
}

fn checksum(payload_len: u32, payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&payload_len.to_le_bytes()), payload)
}

/// The payload length a frame header claims.
pub(crate) fn payload_len(header: &[u8; HEADER_BYTES]) -> u32 {
    u32::from_le_bytes(header[..4].try_into().expect("4 bytes"))
}

/// Whether `payload` is what the frame header promised.
pub(crate) fn is_intact(header: &[u8; HEADER_BYTES], payload: &[u8]) -> bool {
    let len = payload_len(header);
    let sum = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    len as usize == payload.len() && len > 0 && checksum(len, payload) == sum
}

/// Reads frames from `reader`, which is at byte `offset` of a file of `file_len` bytes,
/// handing each intact one's `(offset, payload)` to `visit` (which may stop the scan with
/// an error) and its size to `on_bytes`. Stops at the end or at the first frame that is
/// incomplete or fails its checksum; returns the offset after the last intact frame.
/// `what` names the file in errors.
pub(crate) fn scan(
    reader: &mut impl Read,
    mut offset: u64,
    file_len: u64,
    what: &str,
    mut on_bytes: impl FnMut(u64),
    mut visit: impl FnMut(u64, &[u8]) -> Result<(), String>,
) -> Result<u64, String> {
    let mut payload = Vec::new();
    loop {
        let mut header = [0u8; HEADER_BYTES];
        match read_full(reader, &mut header) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(format!("reading {what}: {e}")),
        }
        let len = payload_len(&header) as u64;
        if len == 0 || offset + HEADER_BYTES as u64 + len > file_len {
            break;
        }
        payload.resize(len as usize, 0);
        match read_full(reader, &mut payload) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(format!("reading {what}: {e}")),
        }
        if !is_intact(&header, &payload) {
            break;
        }
        visit(offset, &payload)?;
        offset += HEADER_BYTES as u64 + len;
        on_bytes(HEADER_BYTES as u64 + len);
    }
    Ok(offset)
}

/// Fills `buf`; `Ok(false)` if the input ends first.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    match reader.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// Little-endian reads from a byte slice, failing on a short input.
pub(crate) struct Reader<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) at: usize,
}

impl<'a> Reader<'a> {
    /// Reads `bytes` from the start.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, at: 0 }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or("truncated")?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        Ok(self.take(N)?.try_into().expect("length checked"))
    }
    pub(crate) fn u8(&mut self) -> Result<u8, String> {
        Ok(self.array::<1>()?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16, String> {
        self.array().map(u16::from_le_bytes)
    }
    pub(crate) fn u32(&mut self) -> Result<u32, String> {
        self.array().map(u32::from_le_bytes)
    }
    pub(crate) fn u64(&mut self) -> Result<u64, String> {
        self.array().map(u64::from_le_bytes)
    }
    pub(crate) fn i64(&mut self) -> Result<i64, String> {
        self.array().map(i64::from_le_bytes)
    }
    pub(crate) fn f32(&mut self) -> Result<f32, String> {
        self.array().map(f32::from_le_bytes)
    }
    pub(crate) fn f64(&mut self) -> Result<f64, String> {
        self.array().map(f64::from_le_bytes)
    }
    pub(crate) fn str(&mut self, n: usize) -> Result<&'a str, String> {
        std::str::from_utf8(self.take(n)?).map_err(|_| "an id is not UTF-8".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in payloads {
            let start = open(&mut out);
            out.extend_from_slice(p);
            seal(&mut out, start);
        }
        out
    }

    fn scanned(bytes: &[u8]) -> (Vec<Vec<u8>>, u64) {
        let mut seen = Vec::new();
        let end = scan(
            &mut &bytes[..],
            0,
            bytes.len() as u64,
            "test",
            |_| {},
            |_, p| {
                seen.push(p.to_vec());
                Ok(())
            },
        )
        .unwrap();
        (seen, end)
    }

    #[test]
    fn every_cut_keeps_exactly_the_whole_frames_before_it() {
        let bytes = frames(&[b"first", b"second frame", b"3"]);
        let ends = [13, 33, 42];
        assert_eq!(ends[2], bytes.len());
        for cut in 0..=bytes.len() {
            let (seen, end) = scanned(&bytes[..cut]);
            let whole = ends.iter().filter(|&&e| e <= cut).count();
            assert_eq!(seen.len(), whole, "cut at {cut}");
            assert_eq!(
                end,
                if whole == 0 {
                    0
                } else {
                    ends[whole - 1] as u64
                }
            );
        }
    }

    #[test]
    fn a_flipped_bit_ends_the_scan_at_its_frame() {
        let mut bytes = frames(&[b"first", b"second frame"]);
        bytes[20] ^= 4;
        let (seen, end) = scanned(&bytes);
        assert_eq!((seen, end), (vec![b"first".to_vec()], 13));
    }
}
