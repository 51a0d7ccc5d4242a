"""Git on the host, behind one type: `Repository` (see repository.py) owns a repository's lock and threads."""
