-- Nodes (hosting servers), the sites on them, and the domains attached to sites.

CREATE TABLE nodes (
    id          integer PRIMARY KEY CHECK (id > 0),
    name        text NOT NULL,
    address     text NOT NULL,
    public      boolean NOT NULL DEFAULT false,
    -- The next site number on this node; numbers are never reused.
    next_site   integer NOT NULL DEFAULT 1,
    -- Desired-state revision, bumped with every change that affects the node.
    revision    bigint NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE node_grants (
    node_id  integer NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    user_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, node_id)
);

CREATE TABLE sites (
    node_id     integer NOT NULL REFERENCES nodes (id),
    site_num    integer NOT NULL CHECK (site_num > 0),
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    docroot     text NOT NULL,
    -- The node revision that created or last changed this site.
    revision    bigint NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (node_id, site_num)
);
CREATE INDEX sites_user_id ON sites (user_id, node_id, site_num);

CREATE TABLE domains (
    name        text PRIMARY KEY CHECK (name = lower(name)),
    node_id     integer NOT NULL,
    site_num    integer NOT NULL,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (node_id, site_num) REFERENCES sites (node_id, site_num) ON DELETE CASCADE
);
CREATE INDEX domains_site ON domains (node_id, site_num, name);
CREATE INDEX domains_user ON domains (user_id, node_id, name);
