//! Where a node's reader role finds hostplane's database, for the `*-config` commands.
//!
//! Where a node's reader role finds hostplane's database, for the `*-config` commands: the schema
//! (read from the database), the host, port and name (from `DATABASE_URL` unless given), and the
//! reader's password (from its file, made at random when missing).

/// Where a node's reader finds hostplane's database: (schema, password, host, port, database).
pub struct ReaderDb {
    pub schema: String,
    pub password: String,
    pub host: String,
    pub port: u16,
    pub name: String,
}

/// Reads the schema from the database, and the reader's password from its file (made with a
/// random one when missing).
pub async fn reader_db(
    database_url: &crate::config::Secret,
    password_file: &std::path::Path,
    db_host: Option<String>,
    db_port: Option<u16>,
) -> Result<ReaderDb, String> {
    let url = database_url.expose();
    let pg: tokio_postgres::Config = url
        .parse()
        .map_err(|e| format!("DATABASE_URL is not a valid PostgreSQL URL: {e}"))?;
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("cannot connect to the database: {e}"))?;
    tokio::spawn(conn);
    let schema: String = client
        .query_one("SELECT current_schema()", &[])
        .await
        .map_err(|e| format!("cannot read the schema: {e}"))?
        .get(0);
    let password = match std::fs::read_to_string(password_file) {
        Ok(p) => p.trim().to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let p = uuid::Uuid::new_v4().simple().to_string();
            super::mail::write_secret(password_file, &p)?;
            p
        }
        Err(e) => return Err(format!("cannot read {}: {e}", password_file.display())),
    };
    let host = db_host.unwrap_or_else(|| match pg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".into(),
    });
    Ok(ReaderDb {
        schema,
        password,
        host,
        port: db_port.unwrap_or_else(|| pg.get_ports().first().copied().unwrap_or(5432)),
        name: pg.get_dbname().unwrap_or("postgres").to_string(),
    })
}
