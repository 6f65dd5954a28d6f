"""The rhizome-sentinel agent package."""
