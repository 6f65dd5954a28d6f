"""PostgreSQL parameter values: the rules PostgreSQL applies, its catalogue, its own verdict."""
