//! Bad specs: every problem is reported at once, each naming file, pointer, line and what is
//! wrong. Each case's full error text is a snapshot (paths relative to the crate).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use klue_spec::load_dir;
use std::path::Path;

fn errors_of(case: &str) -> String {
    let dir = format!("tests/fixtures/bad/{case}");
    match load_dir(Path::new(&dir)) {
        Ok(apis) => panic!("{case}: loaded {} API(s), expected errors", apis.len()),
        Err(e) => e.to_string(),
    }
}

macro_rules! bad_case {
    ($name:ident) => {
        #[test]
        fn $name() {
            insta::assert_snapshot!(stringify!($name), errors_of(stringify!($name)));
        }
    };
}

bad_case!(syntax);
bad_case!(dangling_ref);
bad_case!(duplicate_operation_id);
bad_case!(path_params);
bad_case!(unsupported_version);
bad_case!(xml_body);
bad_case!(callbacks);
bad_case!(tsv);
bad_case!(multiple);
bad_case!(reserved_route);

#[test]
fn missing_directory_is_named() {
    let err = load_dir(Path::new("tests/fixtures/bad/no_such_dir")).unwrap_err();
    assert_eq!(err.0.len(), 1);
    assert_eq!(err.0[0].file, Path::new("tests/fixtures/bad/no_such_dir"));
    assert!(err.0[0].message.starts_with("cannot read the directory"));
}
