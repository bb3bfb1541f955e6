//! A private PostgreSQL server started from the machine's binaries.
