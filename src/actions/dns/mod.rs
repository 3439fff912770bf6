//! DNS hosting: zones and their records, and the rules for record content.

pub(crate) mod content;
pub(crate) mod records;
pub(crate) mod zones;
