"""Settings, domain types, time helpers and indicators. Imports nothing of ours."""
