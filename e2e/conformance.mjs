// Runs the MCP conformance suite (server scenarios) against `hostkey-mcp --sandbox --http`.
// The baseline lists the scenarios that need the suite's own reference fixtures.
import { spawn, spawnSync } from "node:child_process";
import { createServer } from "node:net";

const binary = process.argv[2] ?? "../bin/hostkey-mcp";

const port = await new Promise((resolve) => {
  const s = createServer().listen(0, "127.0.0.1", () => {
    const p = s.address().port;
    s.close(() => resolve(p));
  });
});
const server = spawn(binary, ["--sandbox", "--http", `127.0.0.1:${port}`, "--toolsets", "all"], {
  stdio: ["ignore", "ignore", "inherit"],
  env: { HOME: process.env.HOME ?? "/tmp", PATH: process.env.PATH ?? "", HOSTKEY_LOG_LEVEL: "warn" },
});
const stop = () => server.kill("SIGTERM");
process.on("exit", stop);

const deadline = Date.now() + 20000;
for (;;) {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/healthz`);
    if (r.ok) break;
  } catch {}
  if (Date.now() > deadline) {
    console.error("hostkey-mcp did not start");
    process.exit(1);
  }
  await new Promise((r) => setTimeout(r, 100));
}

const res = spawnSync(
  "npx",
  ["conformance", "server", "--url", `http://127.0.0.1:${port}/mcp`, "--expected-failures", "conformance-baseline.yml"],
  { stdio: ["ignore", "pipe", "inherit"], encoding: "utf8", timeout: 600000 },
);
const out = res.stdout ?? "";
const summary = out.slice(out.indexOf("=== SUMMARY ==="));
console.log(summary || out);
stop();
process.exit(res.status ?? 1);
