"""Organizations (sites), teams, their members and their raw measure series."""
