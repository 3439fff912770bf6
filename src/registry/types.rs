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

/// A whole number sent as a JSON number or a numeric string (clients send both `99999` and `"2"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Num(pub i64);

/// Like [`Num`], but `""` and `null` mean "not given" (the original protocol sends `"siteid": ""`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OptNum(pub Option<i64>);

struct NumVisitor {
    empty_is_none: bool,
}

impl<'de> Visitor<'de> for NumVisitor {
    type Value = Option<i64>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer (a number or a numeric string)")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        i64::try_from(v)
            .map(Some)
            .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Err(E::invalid_type(de::Unexpected::Float(v), &self))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if v.is_empty() && self.empty_is_none {
            return Ok(None);
        }
        let digits = v.strip_prefix('-').unwrap_or(v);
        if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(E::invalid_value(de::Unexpected::Str(v), &self));
        }
        v.parse()
            .map(Some)
            .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        if self.empty_is_none {
            Ok(None)
        } else {
            Err(E::invalid_type(de::Unexpected::Unit, &self))
        }
    }
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = d.deserialize_any(NumVisitor {
            empty_is_none: false,
        })?;
        v.map(Num)
            .ok_or_else(|| de::Error::custom("an integer is required"))
    }
}

impl<'de> Deserialize<'de> for OptNum {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumVisitor {
            empty_is_none: true,
        })
        .map(OptNum)
    }
}

/// A user id that may be sent as `""` for "not given".
#[derive(Debug, Clone, Copy, Default)]
pub struct OptUuid(pub Option<uuid::Uuid>);

impl<'de> Deserialize<'de> for OptUuid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        match s.as_deref().map(str::trim) {
            None | Some("") => Ok(OptUuid(None)),
            Some(v) => uuid::Uuid::parse_str(v)
                .map(|u| OptUuid(Some(u)))
                .map_err(|_| de::Error::custom("expected a user id (UUID)")),
        }
    }
}

/// A field of a partial update: absent (leave as it is) or present, possibly as `null`.
/// Use with `#[serde(default)]`.
#[derive(Debug, Default)]
pub enum Patch<T> {
    #[default]
    Absent,
    Present(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(Patch::Present)
    }
}
