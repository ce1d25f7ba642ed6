//! Property tests of the IDX parser: whatever the bytes, it answers Ok or a clear error, never
//! a panic; valid files round-trip; cut or damaged ones are refused.

use proptest::prelude::*;
use wgangp_tui::data::idx::{IdxImages, encode_images, parse_images};

fn images() -> impl Strategy<Value = IdxImages> {
    (1usize..6, 1usize..9, 1usize..9).prop_flat_map(|(count, rows, cols)| {
        proptest::collection::vec(any::<u8>(), count * rows * cols).prop_map(move |pixels| {
            IdxImages {
                count,
                rows,
                cols,
                pixels,
            }
        })
    })
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_bytes_parse_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_images(&bytes);
        // With the IDX magic in front, the header fields are random instead.
        let mut with_magic = vec![0, 0, 8, 3];
        with_magic.extend(&bytes);
        let _ = parse_images(&with_magic);
        // And as the content of a gzip stream.
        let _ = parse_images(&gzip(&with_magic));
    }

    #[test]
    fn valid_files_round_trip(images in images(), gz in any::<bool>()) {
        let mut bytes = encode_images(&images);
        if gz {
            bytes = gzip(&bytes);
        }
        let back = parse_images(&bytes).unwrap();
        prop_assert_eq!((back.count, back.rows, back.cols), (images.count, images.rows, images.cols));
        prop_assert_eq!(back.pixels, images.pixels);
    }

    #[test]
    fn cut_files_are_refused(images in images(), cut in 1usize..1000) {
        let bytes = encode_images(&images);
        let keep = bytes.len() - 1 - cut % bytes.len();
        prop_assert!(parse_images(&bytes[..keep]).is_err());
        prop_assert!(parse_images(&gzip(&bytes[..keep])).is_err());
    }

    #[test]
    fn damaged_headers_never_panic(images in images(), at in 0usize..16, value in any::<u8>()) {
        let mut bytes = encode_images(&images);
        bytes[at] = value;
        if let Ok(parsed) = parse_images(&bytes) {
            // Accepted only if the header still describes the bytes exactly.
            prop_assert_eq!(parsed.count * parsed.rows * parsed.cols, bytes.len() - 16);
        }
    }
}
