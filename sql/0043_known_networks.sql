-- The networks an account signed in from (an IPv4 /24, an IPv6 /48: the block a subscriber's
-- addresses move around in), for the sign-in limits and the bcrypt queue (crate::auth::throttle,
-- crate::auth::workers). A password check for a login from a network where it succeeded within
-- 90 days goes before a storm's checks, and the login's limit over all addresses, which a storm
-- can fill to lock the account, counts that network apart. The rows are written only after a
-- whole sign-in succeeded (password and second factor); each account keeps its 8 latest, and the
-- janitor deletes those older than 90 days by the index below.
CREATE TABLE login_networks (
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    network       cidr NOT NULL,
    last_success  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, network)
);
CREATE INDEX login_networks_last_success ON login_networks (last_success);
