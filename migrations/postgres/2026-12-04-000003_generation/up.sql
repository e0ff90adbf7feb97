-- Bumped by every committed write, so that every replica can tell when its in-memory access
-- index (and, later, the firewall it renders) is stale.
ALTER TABLE hub ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
