#!/usr/bin/env bash
# Provisions the Java time-skipping test server (Maven Central) and prints the path of a wrapper
# that TestWorkflowEnvironment.createTimeSkipping starts as an existing executable.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.sh
source "$here/versions.sh"
say() { echo "[test-server] $*" >&2; }

dir="$STL_CACHE_DIR/temporal-test-server-$TEMPORAL_TEST_SERVER_VERSION"
wrapper="$dir/temporal-test-server"
fresh() { [[ -x "$wrapper" && -s "$dir/classpath.txt" ]] && grep -q TieredStopAtLevel "$wrapper"; }
if fresh; then echo "$wrapper"; exit 0; fi
command -v java >/dev/null || { say "java is required for the time-skipping test server"; exit 1; }
command -v mvn >/dev/null || { say "maven (mvn) is required to fetch the time-skipping test server"; exit 1; }
mkdir -p "$dir"
exec 9>"$dir/.lock"; flock 9
if fresh; then echo "$wrapper"; exit 0; fi
[[ -s "$dir/classpath.txt" ]] || {
say "resolving io.temporal:temporal-test-server:$TEMPORAL_TEST_SERVER_VERSION with Maven (one time)"
mvn -q -B -f "$here/test-server/pom.xml" -Dtemporal.test.server.version="$TEMPORAL_TEST_SERVER_VERSION" \
  dependency:build-classpath -Dmdep.outputFile="$dir/classpath.txt" >&2
}
# `exec` so that the SDK's teardown signal reaches the JVM itself; no --enable-time-skipping, the
# SDK drives skipping (with the flag, workflows time out). The SDK waits only 5 s for the port: the
# client compiler alone and the serial collector start the JVM sooner on a busy machine, and a test
# server's light load needs no more.
cat > "$wrapper" <<WRAP
#!/usr/bin/env bash
exec java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -cp "\$(cat "$dir/classpath.txt")" io.temporal.testserver.TestServer "\$@"
WRAP
chmod +x "$wrapper"
echo "$wrapper"
