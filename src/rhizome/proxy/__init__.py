"""The rhizome-proxy agent package."""
