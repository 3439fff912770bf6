//! Fuzzes everything a request body goes through before a handler runs: JSON, the envelope,
//! the action lookup and every action's typed params, and the encoding of the error answer.
#![no_main]

use std::sync::OnceLock;

use hostplane::registry::Registry;
use libfuzzer_sys::fuzz_target;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Registry::new(hostplane::actions::all()).expect("the action table is valid"))
}

fuzz_target!(|body: &[u8]| {
    if let Err(hostplane::error::ApiError::Client { reason, message, .. }) = registry().dry_run(body) {
        let _ = hostplane::registry::protocol::error_body(reason, message.as_deref());
    }
});
