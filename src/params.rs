//! Param types shared by several actions, with the lenient shapes the original protocol sends.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

/// A password, sent as a string or as `[password, confirmation]`.
#[derive(Debug)]
pub enum PasswordParam {
    One(String),
    Pair(String, String),
}

impl PasswordParam {
    /// The password, when a confirmation (if any) matches it.
    pub fn confirmed(self) -> Result<String, &'static str> {
        match self {
            PasswordParam::One(p) => Ok(p),
            PasswordParam::Pair(a, b) if a == b => Ok(a),
            PasswordParam::Pair(..) => Err("the password and its confirmation differ"),
        }
    }
}

impl<'de> Deserialize<'de> for PasswordParam {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PasswordParam;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or [password, confirmation]")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(PasswordParam::One(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let a: String = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let b: String = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(3, &self));
                }
                Ok(PasswordParam::Pair(a, b))
            }
        }
        d.deserialize_any(V)
    }
}

/// One e-mail address or a list of them.
#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "an e-mail address or a list of them")]
pub enum EmailsParam {
    One(String),
    Many(Vec<String>),
}

impl EmailsParam {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            EmailsParam::One(e) => vec![e],
            EmailsParam::Many(v) => v,
        }
    }
}

/// `"yes"` or `"no"` (booleans accepted too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YesNo(pub bool);

impl<'de> Deserialize<'de> for YesNo {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = YesNo;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"yes\" or \"no\"")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<YesNo, E> {
                Ok(YesNo(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<YesNo, E> {
                match v {
                    "yes" => Ok(YesNo(true)),
                    "no" => Ok(YesNo(false)),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}
