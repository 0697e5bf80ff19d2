"""HTTP clients of chat and translation APIs: one spec parser, retry policy and SQLite cache."""
