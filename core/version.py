"""The engine version stamped on every decision (single source for the package version)."""

ENGINE_VERSION = "0.1.0"
