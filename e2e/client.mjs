// An independent MCP client: the official TypeScript SDK spawns `hostkey-mcp --sandbox`
// over stdio, lists the tools, compiles every input schema with Ajv (JSON Schema 2020-12),
// and calls eq_show and eq_status on a sandbox server.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import assert from "node:assert/strict";

const binary = process.argv[2] ?? "../bin/hostkey-mcp";
const serverId = 40101;
let passed = 0;
let failed = 0;
async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (err) {
    failed++;
    console.log(`FAIL ${name}: ${err.message}`);
  }
}

const transport = new StdioClientTransport({
  command: binary,
  args: ["--sandbox", "--toolsets", "all"],
  env: { HOME: process.env.HOME ?? "/tmp", PATH: process.env.PATH ?? "" },
  stderr: "ignore",
});
const client = new Client({ name: "hostkey-mcp-e2e", version: "1.0.0" });
await client.connect(transport);

await check("initialize: server info and sandbox instructions", async () => {
  assert.equal(client.getServerVersion()?.name, "hostkey-mcp");
  assert.match(client.getInstructions() ?? "", /SANDBOX/);
});

let tools = [];
await check("tools/list: every documented action, annotated", async () => {
  tools = (await client.listTools()).tools;
  assert.ok(tools.length >= 100, `only ${tools.length} tools`);
  for (const t of tools) {
    const a = t.annotations ?? {};
    for (const k of ["readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"]) {
      assert.equal(typeof a[k], "boolean", `${t.name}.${k} unset`);
    }
  }
  const reboot = tools.find((t) => t.name === "eq_reboot");
  assert.equal(reboot?.annotations?.destructiveHint, true);
  assert.equal(tools.find((t) => t.name === "eq_show")?.annotations?.readOnlyHint, true);
});

await check("every input schema compiles and rejects unknown properties", async () => {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  for (const t of tools) {
    const validate = ajv.compile(t.inputSchema);
    assert.equal(t.inputSchema.type, "object", t.name);
    assert.equal(validate({ definitely_not_a_parameter: 1 }), false, `${t.name} accepts unknown properties`);
    assert.ok(!("pin" in (t.inputSchema.properties ?? {})), `${t.name} asks the model for the PIN`);
  }
});

await check("eq_show returns the sandbox server", async () => {
  const res = await client.callTool({ name: "eq_show", arguments: { id: serverId } });
  assert.notEqual(res.isError, true, JSON.stringify(res.content));
  assert.match(JSON.stringify(res.structuredContent), new RegExp(String(serverId)));
  assert.match(res.content[0].text, /^eq\/show succeeded/);
});

await check("eq_status reports the power state", async () => {
  const res = await client.callTool({ name: "eq_status", arguments: { id: serverId } });
  assert.notEqual(res.isError, true, JSON.stringify(res.content));
  assert.match(String(res.structuredContent?.scope ?? ""), /power is (on|off)/i);
});

await check("bad arguments are a tool error naming the field", async () => {
  const res = await client.callTool({ name: "eq_status", arguments: { id: "forty" } });
  assert.equal(res.isError, true);
  assert.match(res.content[0].text, /id/);
});

await client.close();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
