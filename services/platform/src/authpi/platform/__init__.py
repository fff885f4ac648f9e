"""The AuthPI host: the all-in-one process, its IdP workers, the `authpi` command, bootstrap and
the contract generator. The only package that imports every service."""
