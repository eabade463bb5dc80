// stockade mcp, driven by the official MCP TypeScript SDK (a client nobody
// here wrote): tools, a run with a file, a session across three calls, a
// cancelled run, and an escape attempt that works on the host and comes back
// contained from the jail.
// usage: node client.mjs /path/to/stockade
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const bin = process.argv[2];
assert.ok(bin && fs.existsSync(bin), "usage: node client.mjs STOCKADE");

function pids(needle) {
  const out = [];
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (fs.readFileSync(`/proc/${d}/cmdline`).includes(needle)) out.push(d);
    } catch {}
  }
  return out;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A secret in the MCP server's own environment: the jail must not see it.
const transport = new StdioClientTransport({ command: bin, args: ["mcp", "--pool", "1"], stderr: "inherit",
  env: { ...process.env, SECRET_TOKEN: "hunter2" } });
const client = new Client({ name: "stockade-sdk-test", version: "1.0.0" });
await client.connect(transport);
console.log("server:", client.getServerVersion().name, "protocol negotiated");

// 1. tools
const { tools } = await client.listTools();
assert.deepEqual(tools.map((t) => t.name).sort(),
  ["python_session_close", "python_session_open", "python_session_run", "run_python"]);
for (const t of tools) {
  assert.equal(t.inputSchema.type, "object");
  assert.equal(t.outputSchema.type, "object");
}
console.log("ok: tools/list");

// 2. run_python with a file (the SDK validates structuredContent against outputSchema)
let r = await client.callTool({ name: "run_python", arguments: {
  code: "import csv\nrows = list(csv.reader(open('data.csv')))\nprint(sum(int(x) for _, x in rows))",
  files: { "data.csv": "a,1\nb,2\nc,39\n" } } });
assert.equal(r.isError, false, JSON.stringify(r));
assert.equal(r.structuredContent.status, "ok");
assert.equal(r.structuredContent.stdout, "42\n");
assert.match(r.content[0].text, /42/);
console.log("ok: run_python with a file");

// A failing program is a tool error, not a protocol error.
r = await client.callTool({ name: "run_python", arguments: { code: "raise SystemExit(3)" } });
assert.equal(r.isError, true);
assert.equal(r.structuredContent.exit_code, 3);
console.log("ok: a failed program is isError");

// An image saved under /work/out comes back as image content.
r = await client.callTool({ name: "run_python", arguments: { code:
  "import base64\nopen('out/dot.png','wb').write(base64.b64decode(" +
  "'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=='))" } });
const img = r.content.find((c) => c.type === "image");
assert.ok(img && img.mimeType === "image/png" && img.data.length > 40, JSON.stringify(r.content));
console.log("ok: image content");

// 3. a session across three calls
r = await client.callTool({ name: "python_session_open", arguments: {} });
const session = r.structuredContent.session;
assert.match(session, /^[0-9a-f]{32}$/);
await client.callTool({ name: "python_session_run", arguments: { session, code: "import math\nacc = []" } });
await client.callTool({ name: "python_session_run", arguments: { session, code: "acc.append(math.pi)" } });
r = await client.callTool({ name: "python_session_run", arguments: { session, code: "round(acc[0] * 2, 4)" } });
assert.equal(r.structuredContent.value, "6.2832");
r = await client.callTool({ name: "python_session_run", arguments: { session, code: "undefined_name" } });
assert.equal(r.isError, true);
assert.equal(r.structuredContent.error.type, "NameError");
r = await client.callTool({ name: "python_session_close", arguments: { session } });
assert.equal(r.structuredContent.closed, session);
console.log("ok: a session across calls");

// 4. cancel a long run: the SDK sends notifications/cancelled; the jail goes.
const marker = `CANCELME-${process.pid}-${Date.now()}`;
const ac = new AbortController();
let progressed = 0;
const long = client.callTool({ name: "run_python", arguments: { code:
  `import subprocess, sys\nsubprocess.run([sys.executable, '-c', 'import time; time.sleep(60)', '${marker}'])` } },
  undefined, { signal: ac.signal, onprogress: () => { progressed++; }, timeout: 120000 });
for (let i = 0; i < 100 && pids(marker).length === 0; i++) await sleep(100);
assert.ok(pids(marker).length > 0, "the long run started");
ac.abort("test cancels");
await assert.rejects(long);
for (let i = 0; i < 50 && pids(marker).length > 0; i++) await sleep(100);
assert.deepEqual(pids(marker), [], "the cancelled run's processes are gone");
assert.ok(progressed >= 1, "progress notifications arrived");
console.log("ok: cancel kills the run");

// 5. a run whose output is over the SDK's 10 MiB message cap: the agent keeps
// its tool server; the model sees the head and tail; the whole is a resource.
r = await client.callTool({ name: "run_python", arguments: { code:
  "import sys\nfor i in range(200000): sys.stdout.write('line %06d ' % i + 'x' * 50 + '\\n')" } });
assert.equal(r.isError, false);
const sc = r.structuredContent;
assert.ok(sc.stdout_bytes > 10 * 1024 * 1024, `the output is over the SDK's cap: ${sc.stdout_bytes}`);
assert.equal(sc.truncated, true);
assert.ok(sc.stdout.length < 1024 * 1024);
assert.match(sc.stdout, /^line 000000 /);
assert.match(sc.stdout, /line 199999 x+\n$/);
let whole = "";
for (const uri of sc.output_resources.filter((u) => u.includes("/stdout/"))) {
  const part = await client.readResource({ uri });
  whole += part.contents[0].text;
}
assert.equal(whole.length, sc.stdout_bytes);
assert.ok(whole.includes("line 100000 "));
r = await client.callTool({ name: "run_python", arguments: { code: "print('still here')" } });
assert.equal(r.structuredContent.stdout, "still here\n");
console.log("ok: output over 10 MiB: head and tail inline, the whole as resources, the server kept");

// 6. a cell the SDK gives up on (its own 60 s timeout, or the user) is
// interrupted; the session and its variables stay.
r = await client.callTool({ name: "python_session_open", arguments: {} });
const s2 = r.structuredContent.session;
await client.callTool({ name: "python_session_run", arguments: { session: s2, code: "x = 41" } });
const ac2 = new AbortController();
const stuck = client.callTool({ name: "python_session_run", arguments: { session: s2, code: "import time\nwhile True: time.sleep(0.1)" } },
  undefined, { signal: ac2.signal, timeout: 120000 });
await sleep(500);
ac2.abort("the agent gives up");
await assert.rejects(stuck);
for (let i = 0; i < 50; i++) {
  r = await client.callTool({ name: "python_session_run", arguments: { session: s2, code: "x + 1" } });
  if (!(r.isError && /busy/.test(r.content[0].text))) break;
  await sleep(100);
}
assert.equal(r.structuredContent.value, "42", JSON.stringify(r));
// A cell that runs out of time says so, and the session stays.
r = await client.callTool({ name: "python_session_run", arguments: { session: s2, code: "import time\ntime.sleep(30)", timeout_s: 0.5 } });
assert.match(r.content[0].text, /time limit of 0.5 s/);
r = await client.callTool({ name: "python_session_run", arguments: { session: s2, code: "x" } });
assert.equal(r.structuredContent.value, "41");
// A cell's images come back too, by their bytes: a script named .png does not.
r = await client.callTool({ name: "python_session_run", arguments: { session: s2, code:
  "import base64\nopen('out/cell.png','wb').write(base64.b64decode(" +
  "'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=='))\n" +
  "open('out/evil.png','w').write('<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>')" } });
const imgs = r.content.filter((c) => c.type === "image");
assert.equal(imgs.length, 1, JSON.stringify(r.content.map((c) => c.type)));
assert.equal(imgs[0].mimeType, "image/png");
await client.callTool({ name: "python_session_close", arguments: { session: s2 } });
console.log("ok: a cancelled cell keeps its session; a timeout says so; cell images by their bytes");

// 7. an escape attempt: Python's own sandbox-breaking trick reaches os and
// reads a host secret on the host; in the jail there is nothing to read.
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stockade-mcp-secret-"));
fs.chmodSync(dir, 0o755);
const secret = path.join(dir, "id_rsa");
fs.writeFileSync(secret, "PRIVATE KEY\n", { mode: 0o644 });
const escape = [
  "osmod = [c for c in ().__class__.__bases__[0].__subclasses__() if c.__name__ == '_wrap_close'][0].__init__.__globals__",
  "try:",
  `    print(osmod['open'] if False else open('${secret}').read())`,
  "except OSError as e:",
  "    print('contained', type(e).__name__)",
  "print(sorted(osmod['environ'].keys()))",
].join("\n");
const host = execFileSync("/usr/bin/python3", ["-c", escape], { env: { SECRET_TOKEN: "hunter2", PATH: "/usr/bin" } }).toString();
assert.match(host, /PRIVATE KEY/);
assert.match(host, /SECRET_TOKEN/);
r = await client.callTool({ name: "run_python", arguments: { code: escape } });
assert.match(r.structuredContent.stdout, /contained FileNotFoundError/);
assert.doesNotMatch(r.structuredContent.stdout, /PRIVATE KEY|SECRET_TOKEN/);
fs.rmSync(dir, { recursive: true });
console.log("ok: the escape attempt is contained");

await client.close();
console.log("all MCP SDK checks passed");
