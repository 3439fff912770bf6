-- A key made by another key is its child: revoking a key revokes the keys it made (and theirs),
-- and every key of one lineage also counts against its root key's hourly budget, so minting
-- children never multiplies a key's limit. Existing keys are roots.
ALTER TABLE api_keys
    ADD COLUMN parent_id uuid REFERENCES api_keys (id) ON DELETE CASCADE,
    ADD COLUMN root_id uuid;
UPDATE api_keys SET root_id = id;
ALTER TABLE api_keys ALTER COLUMN root_id SET NOT NULL;
CREATE INDEX api_keys_parent ON api_keys (parent_id) WHERE parent_id IS NOT NULL;
