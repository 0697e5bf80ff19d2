"""HTTP clients of chat and translation APIs: one spec parser, one retry policy, one SQLite cache."""
