"""The rhizomectl command line."""
