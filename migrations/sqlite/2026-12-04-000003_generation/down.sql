ALTER TABLE hub DROP COLUMN generation;
