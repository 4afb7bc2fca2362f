"""roomctl: the sysadmin's CLI for roomd, working directly on Redis."""
