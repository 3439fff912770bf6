-- Whether a node's agent has reported what it applied at least once. A new node (revision 0, no
-- sites) that reports for the first time moves no revision, yet it goes from "never connected"
-- to in sync: `node_report` tells `node.applied` then too, so an open console shows it.
ALTER TABLE nodes ADD COLUMN reported boolean NOT NULL DEFAULT false;
UPDATE nodes SET reported = true WHERE last_seen IS NOT NULL;
