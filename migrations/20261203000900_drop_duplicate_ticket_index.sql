-- `tickets_versions_behind_idx` (20261203000001) repeats `tickets_projection_idx` (20261126000002)
-- column for column, predicate for predicate: every ticket insert and update paid for two
-- identical indexes. Re-projection keeps using the original.
DROP INDEX IF EXISTS tickets_versions_behind_idx;
