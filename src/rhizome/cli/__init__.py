"""rhizomectl, the operator's command line.

`main` parses the command line and turns every operator error into one line
on stderr and an exit code (see `errors`). Every other module is small:
`status` and `history` render views (pure), `spec_edit` loads, patches and
diffs specs (pure), `spec_commands` and `operations` read and write the store.
"""
