-- Names under one registrable domain are looked up as a range of reversed names
-- ('moc.elpmaxe.' .. 'moc.elpmaxe/'), so refusing a subdomain takeover never scans all domains.
CREATE INDEX domains_reversed_name ON domains (reverse(name) COLLATE "C");
