"""Poll loops: one per workspace, one source per kind of data, the only callers of the client."""
