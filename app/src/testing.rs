//! Throwaway PostgreSQL for tests.
