-- Mail TLS (#18): every mail node has a certificate for its host name, which Postfix (STARTTLS
-- on 25, 465/587) and Dovecot (IMAPS) use. It is a row of `certificates` like a site domain's,
-- named after the node and marked with it (`node_id`), ordered by the same jobs: over DNS-01
-- when an admin's zone here holds the name, else over HTTP-01 answered by the node's agent.
-- The node receives it (and only that node) in its desired state.

-- A certificate row is a site domain's (node_id NULL, gone with its domain) or a mail node's.
ALTER TABLE certificates DROP CONSTRAINT certificates_domain_fkey;
ALTER TABLE certificates ADD COLUMN node_id integer REFERENCES nodes (id) ON DELETE CASCADE;
CREATE UNIQUE INDEX certificates_node ON certificates (node_id) WHERE node_id IS NOT NULL;

CREATE FUNCTION hp_domain_certificates_gone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM certificates c USING gone_rows g WHERE c.domain = g.name AND c.node_id IS NULL;
    RETURN NULL;
END
$$;
CREATE TRIGGER domains_certificates_gone AFTER DELETE ON domains
    REFERENCING OLD TABLE AS gone_rows FOR EACH STATEMENT
    EXECUTE FUNCTION hp_domain_certificates_gone();

-- A node that serves mail wants a certificate for its name; a renamed one wants a new one.
CREATE FUNCTION hp_node_certificate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM certificates
     WHERE node_id = NEW.id AND (domain <> NEW.name OR NOT 'mail' = ANY (NEW.kinds));
    IF 'mail' = ANY (NEW.kinds) THEN
        INSERT INTO certificates (domain, node_id) VALUES (NEW.name, NEW.id)
            ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER nodes_certificate AFTER INSERT OR UPDATE OF name, kinds ON nodes
    FOR EACH ROW EXECUTE FUNCTION hp_node_certificate();

INSERT INTO certificates (domain, node_id)
    SELECT name, id FROM nodes WHERE 'mail' = ANY (kinds) ON CONFLICT DO NOTHING;
