"""Data-subject requests against one store: find a person's rows, export or erase them.

`identifiers` reads the subject's identifiers (personal data: never logged, never in a result
or an exception); `plan` decides, without I/O, which columns of which tables to match and
which of the subject's rows a statute keeps; `engine` runs an access or an erasure request
against the store's databases (reusing the purge's sessions, drivers and statutory copy);
`export` seals the rows found for the requester; `result` is the JSON record without
personal data that the operator reads. `request` (the DataSubjectRequest resource) belongs
to the operator side.
"""
