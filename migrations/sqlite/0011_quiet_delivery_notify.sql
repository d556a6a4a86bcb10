-- PostgreSQL-only change (delivery NOTIFY trigger); SQLite wakes its worker
-- in-process. Kept so both engines share migration numbers.
SELECT 1;
