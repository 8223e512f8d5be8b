-- SQLite: the write transaction's BEGIN IMMEDIATE already serializes every writer.
select 1
