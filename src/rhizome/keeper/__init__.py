"""The rhizome-keeper agent package."""
