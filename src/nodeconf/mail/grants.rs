//! The SQL that makes a region's mail reader role, which sees that region's rows only.
//!
//! The SQL a database superuser runs once per region (and again after an upgrade: it is
//! idempotent) to make that region's reader role: SELECT on the mail views, writing the usage
//! columns of `mailbox_usage`, and its row in `mail_reader_regions`, by which the database shows
//! and lets it write that region's rows only (sql/0018_mail_reader_regions.sql).

use super::{ident, literal, MailConfig, VIEWS};

/// The reader-grants.sql of `c`'s region.
pub fn reader_grants_sql(c: &MailConfig) -> String {
    let schema = ident(&c.schema);
    let role = ident(&c.reader);
    let views: Vec<String> = VIEWS.iter().map(|v| format!("{schema}.{v}")).collect();
    // The password is checked to hold no quote or '$', so it cannot end the DO block's body.
    format!(
        "DO $grants$\nBEGIN\n  \
         IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {role_literal}) THEN\n    \
         ALTER ROLE {role} LOGIN PASSWORD {password};\n  \
         ELSE\n    CREATE ROLE {role} LOGIN PASSWORD {password};\n  END IF;\nEND\n$grants$;\n\
         GRANT USAGE ON SCHEMA {schema} TO {role};\n\
         GRANT SELECT ON {views} TO {role};\n\
         GRANT SELECT (address), INSERT (address, used_bytes, messages), \
         UPDATE (used_bytes, messages) ON {schema}.mailbox_usage TO {role};\n\
         INSERT INTO {schema}.mail_reader_regions (role, region) VALUES ({role_literal}, {region})\n  \
         ON CONFLICT (role) DO UPDATE SET region = EXCLUDED.region;\n",
        role_literal = literal(&c.reader),
        password = literal(&c.reader_password),
        region = literal(&c.region),
        views = views.join(", "),
    )
}
