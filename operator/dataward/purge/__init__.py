"""The purge job: destroy expired personal data, archive what a statute keeps, lose nothing.

`plan` decides (cutoffs, gates, batch sizes) without I/O; `sql` builds engine-neutral SQL and
wraps a DB-API connection; `postgres` and `mysql` connect and introspect; `batches` runs one
batch's statements per engine; `engine` runs a plan against sessions (one `TableRun` per
table, one batch loop); `result` is the JSON record the operator reads; `source` loads the
store.
"""
