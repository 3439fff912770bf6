//! Params as the handlers see them, decoded with an error that names the param.
//!
//! Params as the handlers see them: the fields a params type declares (for the audit log), and
//! decoding into that type with an error that names the offending param.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{ApiError, Reason};

/// The field names a derived `Deserialize` struct declares: serde hands them to
/// `deserialize_struct`, which this probe records and then refuses. Empty for any other shape.
pub(super) fn declared_fields<P: DeserializeOwned>() -> &'static [&'static str] {
    use serde::de::{self, Visitor};
    struct Probe<'a>(&'a mut &'static [&'static str]);
    impl<'de> serde::Deserializer<'de> for Probe<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("probe"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("probe"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = P::deserialize(Probe(&mut fields));
    fields
}

/// Decodes params into a handler's struct; the error names the offending param, also one the
/// struct does not declare. NUL characters are refused everywhere: no param needs them, and
/// PostgreSQL text cannot hold them.
pub fn decode_params<P: DeserializeOwned>(params: &Value) -> Result<P, ApiError> {
    if let Some(path) = find_nul(params, String::new()) {
        return Err(
            Reason::bad_params.msg(format!("param `{path}`: NUL characters are not allowed"))
        );
    }
    // A param the action does not take is a mistake (a typo, or a param of another action):
    // said, not silently ignored.
    let fields = declared_fields::<P>();
    if let (false, Value::Object(map)) = (fields.is_empty(), params) {
        if let Some(unknown) = map.keys().find(|k| !fields.contains(&k.as_str())) {
            // The name is the caller's: cut, so an answer (or a log line) never carries much of it.
            let name: String = unknown.chars().take(64).collect();
            let cut = if name.len() < unknown.len() {
                "…"
            } else {
                ""
            };
            return Err(Reason::bad_params.msg(format!(
                "param `{name}{cut}`: not a param of this action (it takes {})",
                fields.join(", ")
            )));
        }
    }
    serde_path_to_error::deserialize(params).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            Reason::bad_params.msg(inner.to_string())
        } else {
            Reason::bad_params.msg(format!("param `{path}`: {inner}"))
        }
    })
}

/// The path of the first string or key holding a NUL character.
fn find_nul(v: &Value, path: String) -> Option<String> {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match v {
        Value::String(s) if s.contains('\0') => Some(path),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| find_nul(item, join(&i.to_string()))),
        Value::Object(map) => map.iter().find_map(|(k, item)| {
            if k.contains('\0') {
                Some(join(k))
            } else {
                find_nul(item, join(k))
            }
        }),
        _ => None,
    }
}
