# Pinned versions of the Temporal pieces the project provisions itself (one place).
TEMPORAL_CLI_VERSION=1.5.1          # CLI 1.5.1 = server 1.29.1, Web UI 2.42.1
TEMPORAL_SERVER_VERSION=1.29.1      # production-shaped cluster (scripts/cluster)
TEMPORAL_TEST_SERVER_VERSION=1.31.0 # Java time-skipping test server (Maven Central)
STL_CACHE_DIR="${SPEED_TO_LEAD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/speed-to-lead}"
