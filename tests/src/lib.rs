//! Workspace-level tests (see `tests/tests/`):
//!
//! - `consistency.rs`: the Dockerfile, the Helm chart and the operator's builders agree on
//!   binaries, subcommands, ports, environment variables and the runtime user. Always runs.
//! - `e2e.rs`: the end-to-end suite against the cluster in `KUBECONFIG`, only with
//!   `AHLT_E2E=1` (otherwise each test prints why it is skipped). See docs/testing-e2e.md.
