"""The config: read, validate and type the JSON files; the console's edits; hot reload; the first run."""
