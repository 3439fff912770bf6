-- Lists that stay fast at millions of rows (issue 11): indexes that give each list its order,
-- trigram indexes for get_list_user's substring search, and totals that are counted exactly
-- only up to 1,000 rows and estimated by the planner above.

-- pg_trgm ships with PostgreSQL (trusted: a database owner may create it). One lock for the
-- whole database, since parallel schemas migrating at once would race to create it.
SELECT pg_advisory_xact_lock(72462);
CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;

-- A node's domains in name order: the unfiltered page (an admin's or the agent's view) and its
-- keyset continuation (`after`). The user filter has domains_user (user_id, node_id, name).
CREATE INDEX domains_node_name ON domains (node_id, name);

-- get_list_user's q: ILIKE '%q%' on logins and addresses, answered from trigrams.
CREATE INDEX users_login_trgm ON users USING gin (login public.gin_trgm_ops);
CREATE INDEX user_emails_email_trgm ON user_emails USING gin (email public.gin_trgm_ops);

-- The planner's estimate of the rows a query returns (EXPLAIN, no execution).
CREATE FUNCTION hp_estimate(query text) RETURNS bigint
    LANGUAGE plpgsql AS $$
DECLARE
    plan json;
BEGIN
    EXECUTE 'EXPLAIN (FORMAT JSON) ' || query INTO plan;
    RETURN (plan -> 0 -> 'Plan' ->> 'Plan Rows')::bigint;
END
$$;

-- A list's total: `capped` is an exact count of at most 1,001 matching rows; past 1,000 the
-- planner's estimate of `query` (never below 1,001, so a total above 1,000 means "estimated").
CREATE FUNCTION hp_total(capped bigint, query text) RETURNS bigint
    LANGUAGE plpgsql AS $$
BEGIN
    IF capped <= 1000 THEN
        RETURN capped;
    END IF;
    RETURN greatest(hp_estimate(query), capped);
END
$$;
