//! Fuzzes the loader's ELF checks: any bytes are judged complete or refused, never a panic (nor
//! an out-of-bounds read: the check is safe Rust, and the target runs under AddressSanitizer),
//! and a file judged complete really holds everything its headers point at, so `dlopen` never
//! maps a page past its end.
//!
//! Input: the file's bytes, judged as they are and again with a valid 64-bit little-endian
//! shared-object identification forced into the header (so that most inputs reach the header
//! tables instead of stopping at the magic number).

#![no_main]

use hivemind_host::fuzzing::check_elf;
use hivemind_host::fuzzing::ElfError;
use libfuzzer_sys::fuzz_target;

fn u16_at(bytes: &[u8], at: usize) -> u64 {
    u64::from(u16::from_le_bytes([bytes[at], bytes[at + 1]]))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

/// Where the table of `count` entries of `size` bytes at `offset` ends, if that is a number.
fn table_end(offset: u64, size: u64, count: u64) -> Option<u64> {
    offset.checked_add(size.checked_mul(count)?)
}

/// Checks `bytes` and that the verdict is right by the ELF format's own rules.
fn judge(bytes: &[u8]) {
    let len = bytes.len() as u64;
    match check_elf(bytes) {
        Err(ElfError::Empty) => assert!(bytes.is_empty()),
        Err(ElfError::NotElf) => assert!(!bytes.starts_with(b"\x7fELF")),
        Err(ElfError::Truncated { expected, actual }) => {
            assert_eq!(actual, len);
            assert!(expected > actual, "truncated at {actual} of {expected}");
        }
        Err(ElfError::WrongPlatform | ElfError::NotSharedObject) => {
            assert!(bytes.starts_with(b"\x7fELF") && bytes.len() >= 64);
        }
        Ok(()) => {
            assert!(bytes.len() >= 64 && bytes.starts_with(b"\x7fELF"));
            assert_eq!((bytes[4], bytes[5], u16_at(bytes, 0x10)), (2, 1, 3));
            let program_headers = table_end(
                u64_at(bytes, 0x20),
                u16_at(bytes, 0x36),
                u16_at(bytes, 0x38),
            );
            let section_headers = table_end(
                u64_at(bytes, 0x28),
                u16_at(bytes, 0x3a),
                u16_at(bytes, 0x3c),
            );
            assert!(
                program_headers.is_some_and(|end| end <= len),
                "program headers past the end"
            );
            assert!(
                section_headers.is_some_and(|end| end <= len),
                "section headers past the end"
            );
            // Each segment's bytes (p_offset, p_filesz) must be in the file. A table whose
            // entries are too short to hold them is not a valid ELF64 file; `dlopen` refuses it.
            let entry_size = u16_at(bytes, 0x36) as usize;
            if entry_size >= 0x28 {
                let start = u64_at(bytes, 0x20) as usize;
                let count = u16_at(bytes, 0x38) as usize;
                for n in 0..count {
                    let entry = &bytes[start + n * entry_size..][..entry_size];
                    let end = u64_at(entry, 0x08).checked_add(u64_at(entry, 0x20));
                    assert!(
                        end.is_some_and(|end| end <= len),
                        "segment {n} past the end"
                    );
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    judge(data);
    if data.len() >= 64 {
        let mut forged = data.to_vec();
        forged[..6].copy_from_slice(b"\x7fELF\x02\x01");
        forged[0x10..0x12].copy_from_slice(&3u16.to_le_bytes());
        judge(&forged);
    }
});
