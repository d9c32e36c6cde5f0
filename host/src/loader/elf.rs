//! Cheap checks that a file is a complete ELF shared object before `dlopen` maps it.
//!
//! `dlopen` of a truncated file can crash the process (SIGBUS when a mapped page lies past the
//! end of the file), so a half-written library must be refused first. The check reads the ELF
//! header and program headers and requires the file to cover every part they describe.

/// Why a file is not a loadable ELF shared object.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ElfError {
    /// The file has no bytes.
    #[error("the file is empty")]
    Empty,
    /// Not an ELF file at all (text, random bytes, another format).
    #[error("it is not a compiled library (no ELF header)")]
    NotElf,
    /// An ELF file for another word size or byte order.
    #[error(
        "it is an ELF file for another platform (this host loads 64-bit little-endian libraries)"
    )]
    WrongPlatform,
    /// An executable or object file, not a shared library.
    #[error("it is an ELF file but not a shared library")]
    NotSharedObject,
    /// Shorter than its headers say: still being written, or cut off.
    #[error(
        "it is truncated: {actual} bytes, but its headers describe {expected} (is it still being written?)"
    )]
    Truncated {
        /// Bytes the headers describe.
        expected: u64,
        /// Bytes on disk.
        actual: u64,
    },
}

const ELF_MAGIC: [u8; 4] = [0x7f, b'E', b'L', b'F'];
const CLASS_64: u8 = 2;
const LITTLE_ENDIAN: u8 = 1;
const TYPE_SHARED: u16 = 3;
const HEADER_LEN: usize = 64;

/// Checks that `bytes` (a whole file) are a complete 64-bit little-endian ELF shared object.
pub fn check(bytes: &[u8]) -> Result<(), ElfError> {
    let actual = bytes.len() as u64;
    if bytes.is_empty() {
        return Err(ElfError::Empty);
    }
    if bytes.len() < 4 || bytes[..4] != ELF_MAGIC {
        return Err(ElfError::NotElf);
    }
    if bytes.len() < HEADER_LEN {
        return Err(ElfError::Truncated {
            expected: HEADER_LEN as u64,
            actual,
        });
    }
    let header = &bytes[..HEADER_LEN];
    if header[4] != CLASS_64 || header[5] != LITTLE_ENDIAN {
        return Err(ElfError::WrongPlatform);
    }
    if u16_at(header, 0x10) != TYPE_SHARED {
        return Err(ElfError::NotSharedObject);
    }
    let program_headers = u64_at(header, 0x20);
    let section_headers = u64_at(header, 0x28);
    let program_header_size = u64::from(u16_at(header, 0x36));
    let program_header_count = u64::from(u16_at(header, 0x38));
    let section_header_size = u64::from(u16_at(header, 0x3a));
    let section_header_count = u64::from(u16_at(header, 0x3c));

    let table_end = program_headers.saturating_add(program_header_size * program_header_count);
    let mut expected = section_headers
        .saturating_add(section_header_size * section_header_count)
        .max(table_end);
    if table_end <= actual && program_header_size >= 0x28 {
        let table = &bytes[program_headers as usize..table_end as usize];
        for entry in table.chunks_exact(program_header_size as usize) {
            let offset = u64_at(entry, 0x08);
            let file_size = u64_at(entry, 0x20);
            expected = expected.max(offset.saturating_add(file_size));
        }
    }
    if actual < expected {
        return Err(ElfError::Truncated { expected, actual });
    }
    Ok(())
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real shared library to cut up: the C library every Linux process maps.
    fn a_real_shared_library() -> std::path::PathBuf {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        maps.lines()
            .filter_map(|line| line.split_whitespace().nth(5))
            .find(|path| path.contains("libc.so") || path.contains("libc-"))
            .map(Into::into)
            .expect("libc is mapped")
    }

    #[test]
    fn a_complete_library_passes() {
        assert_eq!(
            check(&std::fs::read(a_real_shared_library()).unwrap()),
            Ok(())
        );
    }

    #[test]
    fn empty_text_and_random_files_are_refused() {
        assert_eq!(check(b""), Err(ElfError::Empty));
        assert_eq!(check(b"fn main() {}\n"), Err(ElfError::NotElf));
        let noise: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
        assert_eq!(check(&noise), Err(ElfError::NotElf));
    }

    #[test]
    fn a_truncated_library_is_refused() {
        let whole = std::fs::read(a_real_shared_library()).unwrap();
        for cut in [10, 64, 4096, whole.len() / 2, whole.len() - 1] {
            let result = check(&whole[..cut]);
            assert!(
                matches!(result, Err(ElfError::Truncated { .. })),
                "cut at {cut}: {result:?}"
            );
        }
    }

    proptest::proptest! {
        // Fuzzing, bounded: any bytes are judged without a panic, and no cut of a real library
        // passes for whole.
        #[test]
        fn any_bytes_are_judged_without_panicking(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = check(&bytes);
        }

        #[test]
        fn a_forged_header_with_any_tables_is_judged_without_panicking(
            offsets in proptest::collection::vec(proptest::num::u64::ANY, 2),
            sizes in proptest::collection::vec(proptest::num::u16::ANY, 4),
            length in 64usize..4096,
        ) {
            let mut bytes = vec![0u8; length];
            bytes[..4].copy_from_slice(&ELF_MAGIC);
            bytes[4] = CLASS_64;
            bytes[5] = LITTLE_ENDIAN;
            bytes[0x10..0x12].copy_from_slice(&TYPE_SHARED.to_le_bytes());
            bytes[0x20..0x28].copy_from_slice(&offsets[0].to_le_bytes());
            bytes[0x28..0x30].copy_from_slice(&offsets[1].to_le_bytes());
            for (i, at) in [0x36, 0x38, 0x3a, 0x3c].into_iter().enumerate() {
                bytes[at..at + 2].copy_from_slice(&sizes[i].to_le_bytes());
            }
            let _ = check(&bytes);
        }

        #[test]
        fn no_cut_of_a_real_library_passes(cut in 0.0f64..1.0) {
            let whole = std::fs::read(a_real_shared_library()).unwrap();
            let at = ((whole.len() - 1) as f64 * cut) as usize;
            proptest::prop_assert!(check(&whole[..at]).is_err());
        }
    }
}
