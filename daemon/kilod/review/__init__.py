"""The review desk, split by job: queries (diff, comments, compare), landing (approve, discard) and
commands on an attempt (cancel, retry, follow-up, shell). Nothing lands that a person did not see."""
