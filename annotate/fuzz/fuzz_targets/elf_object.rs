//! Any byte string: `Object::parse` returns a model or a typed error, never
//! panics; a model survives serialisation and a self-verify.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modswap_elf::Object;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    match Object::parse(Path::new("fuzz.ko"), data) {
        Ok(obj) => {
            let _ = serde_json::to_string(&obj).expect("the model serialises");
            let _ = modswap_elf::verify::verify(&obj, &obj);
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with("fuzz.ko: "), "error does not name the file: {msg}");
        }
    }
});
