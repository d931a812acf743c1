"""Data-subject requests (PIPA Articles 35-37): access to, and erasure of, one person's rows."""
