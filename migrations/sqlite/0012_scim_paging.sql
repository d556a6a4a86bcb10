-- SCIM group listings without a filter page through a directory in id order
-- (`startIndex`/`count`): the page's ids come from this index alone, then
-- only those rows are read. (Users page by their unique userName key, whose
-- index exists already: another index on the users table cost measurable
-- create throughput.)
CREATE INDEX directory_groups_page ON directory_groups (directory_id, id);
