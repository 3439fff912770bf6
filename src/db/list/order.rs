//! A list's order and its keyset cursor, the opaque string a client passes back.
//!
//! A list's order and its keyset cursor: the key columns, their direction, and a page's last key
//! as the opaque string a client passes back (checked against each column's type on the way in).

use crate::error::{ApiError, Reason};

/// What a key column holds, which says how its value is written in a cursor and read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Text,
    /// Any integer column (as text, compared as `int8`).
    Int,
    Uuid,
    /// A `timestamptz`, as whole microseconds since 1970 (exact, unlike a formatted time).
    Time,
    /// A transaction id (`xid8`), as its decimal text.
    Xid8,
}

/// One column of a list's order. Key columns are `NOT NULL`: a row value holding a null
/// compares as unknown, and its row would drop out of the walk.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub column: &'static str,
    pub ty: KeyType,
}

impl Key {
    pub const fn text(column: &'static str) -> Key {
        Key {
            column,
            ty: KeyType::Text,
        }
    }
    pub const fn int(column: &'static str) -> Key {
        Key {
            column,
            ty: KeyType::Int,
        }
    }
    pub const fn uuid(column: &'static str) -> Key {
        Key {
            column,
            ty: KeyType::Uuid,
        }
    }
    pub const fn time(column: &'static str) -> Key {
        Key {
            column,
            ty: KeyType::Time,
        }
    }
    pub const fn xid8(column: &'static str) -> Key {
        Key {
            column,
            ty: KeyType::Xid8,
        }
    }

    /// The column's value as the text a cursor holds.
    pub(super) fn read_sql(&self) -> String {
        let c = self.column;
        match self.ty {
            KeyType::Time => format!("(extract(epoch FROM {c}) * 1000000)::int8::text"),
            _ => format!("({c})::text"),
        }
    }

    /// A cursor value (a text parameter `$n`) as a value of the column's type. Each cast is of
    /// a parameter only, so the comparison stays an index condition.
    pub(super) fn param_sql(&self, n: usize) -> String {
        match self.ty {
            KeyType::Text => format!("${n}::text"),
            KeyType::Int => format!("${n}::text::int8"),
            KeyType::Uuid => format!("${n}::text::uuid"),
            KeyType::Xid8 => format!("${n}::text::xid8"),
            KeyType::Time => {
                format!("('epoch'::timestamptz + ${n}::text::int8 * interval '1 microsecond')")
            }
        }
    }

    /// Whether `v` reads back as a value of the column's type (a cast that would fail in the
    /// database is refused here).
    fn accepts(&self, v: &str) -> bool {
        match self.ty {
            KeyType::Text => v.len() <= 65_536 && !v.contains('\0'),
            KeyType::Int => v.parse::<i64>().is_ok(),
            KeyType::Uuid => uuid::Uuid::parse_str(v).is_ok(),
            KeyType::Xid8 => v.parse::<u64>().is_ok_and(|x| i64::try_from(x).is_ok()),
            // Within what an interval holds exactly (about 285 years either side of 1970).
            KeyType::Time => v
                .parse::<i64>()
                .is_ok_and(|x| x.unsigned_abs() < (1u64 << 53)),
        }
    }
}

/// A list's order: its key columns, all ascending or all descending (a row value compares in
/// one direction). The key must identify a row, so pages neither skip nor repeat one.
#[derive(Debug, Clone, Copy)]
pub struct Order {
    pub keys: &'static [Key],
    pub descending: bool,
    /// A cursor written as its values joined by this character rather than as a JSON array (a
    /// format documented before this builder: only the last value may hold the character).
    pub(super) joined: Option<char>,
}

impl Order {
    pub const fn asc(keys: &'static [Key]) -> Order {
        Order {
            keys,
            descending: false,
            joined: None,
        }
    }
    pub const fn desc(keys: &'static [Key]) -> Order {
        Order {
            keys,
            descending: true,
            joined: None,
        }
    }
    /// Cursors as the values joined by `sep` (see [`Order::joined`]).
    pub const fn joined_by(mut self, sep: char) -> Order {
        self.joined = Some(sep);
        self
    }

    /// The cursor in param `param` (absent or empty: the first page); `bad_params` naming the
    /// param when it is not the `next` of a page of this list.
    pub fn cursor(&self, param: &str, raw: Option<&str>) -> Result<Option<Cursor>, ApiError> {
        let Some(raw) = raw.filter(|r| !r.is_empty()) else {
            return Ok(None);
        };
        let bad = || {
            Reason::bad_params.msg(format!(
                "param `{param}`: the `next` of an earlier page of this list"
            ))
        };
        let values: Vec<String> = match self.joined {
            _ if self.keys.len() == 1 => vec![raw.to_string()],
            Some(sep) => raw
                .splitn(self.keys.len(), sep)
                .map(str::to_string)
                .collect(),
            None => serde_json::from_str(raw).map_err(|_| bad())?,
        };
        if values.len() != self.keys.len()
            || !self.keys.iter().zip(&values).all(|(k, v)| k.accepts(v))
        {
            return Err(bad());
        }
        Ok(Some(Cursor {
            values,
            joined: self.joined,
        }))
    }

    pub(super) fn by(&self) -> String {
        let dir = if self.descending { " DESC" } else { "" };
        self.keys
            .iter()
            .map(|k| format!("{}{dir}", k.column))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Where a page ends: the key of its last row. Pass [`Cursor::encode`] to the client as `next`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub(super) values: Vec<String>,
    pub(super) joined: Option<char>,
}

impl Cursor {
    /// The string a client passes back: the value of a one-column key, else a JSON array (or
    /// the values joined, for an order that says so).
    pub fn encode(&self) -> String {
        match (self.values.as_slice(), self.joined) {
            ([one], _) => one.clone(),
            (many, Some(sep)) => many.join(&sep.to_string()),
            (many, None) => serde_json::to_string(many).unwrap_or_default(),
        }
    }

    /// The key's values, as text.
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// A cursor the service made itself (not a client's: those go through [`Order::cursor`]).
    pub fn at(values: Vec<String>) -> Cursor {
        Cursor {
            values,
            joined: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAIR: Order = Order::asc(&[Key::text("source"), Key::text("region")]);
    const ONE_NAME: Order = Order::asc(&[Key::text("name")]);
    const NEWEST: Order = Order::desc(&[Key::time("created_at"), Key::uuid("id")]);

    #[test]
    fn a_one_column_cursor_is_its_value_and_a_longer_one_a_json_array() {
        const ONE: Order = Order::asc(&[Key::text("name")]);
        let one = ONE;
        let c = one.cursor("after", Some("a.example")).unwrap().unwrap();
        assert_eq!(c.encode(), "a.example");
        let c = PAIR
            .cursor("after", Some(r#"["a@x","eu"]"#))
            .unwrap()
            .unwrap();
        assert_eq!(c.encode(), r#"["a@x","eu"]"#);
        assert_eq!(one.cursor("after", Some("")).unwrap(), None);
        assert_eq!(one.cursor("after", None).unwrap(), None);
    }

    #[test]
    fn a_cursor_that_no_page_gave_is_refused_naming_its_param() {
        for bad in [
            "a@x",
            r#"["a@x"]"#,
            r#"["a@x","eu","more"]"#,
            r#"{"a":1}"#,
            r#"[1,2]"#,
        ] {
            let e = PAIR.cursor("after", Some(bad)).unwrap_err();
            assert!(
                e.to_cli_text().contains("`after`"),
                "{bad}: {}",
                e.to_cli_text()
            );
        }
        for bad in [
            r#"["x","8c1e4b62-5d52-4c64-9a38-6c7e0d7a2b11"]"#,
            r#"["99999999999999999999","8c1e4b62-5d52-4c64-9a38-6c7e0d7a2b11"]"#,
            r#"["1","not-a-uuid"]"#,
        ] {
            assert!(NEWEST.cursor("before", Some(bad)).is_err(), "{bad}");
        }
        assert!(ONE_NAME.cursor("after", Some("a\0b")).is_err());
    }
}
