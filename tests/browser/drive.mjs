// Serves the page from its own origin (a static server on a free port) and opens it in Debian's
// Chromium under Playwright; the page signs in, opens a ticket and reads its SLA through the
// generated client against the API on another origin. Exits non-zero unless the page succeeds.
// Usage: node drive.mjs API_URL EMAIL PASSWORD PAGE_PORT
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize } from "node:path";
import { chromium } from "playwright-core";

const [api, email, password, port] = process.argv.slice(2);
const root = new URL(".", import.meta.url).pathname;
const types = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".map": "application/json" };

const server = createServer(async (req, res) => {
  const path = normalize(new URL(req.url, "http://x").pathname).replace(/^\/+/, "");
  const file = join(root, path === "" ? "page/index.html" : path);
  if (!file.startsWith(root)) return res.writeHead(403).end();
  try {
    const body = await readFile(file);
    res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream" }).end(body);
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((resolve) => server.listen(Number(port), "127.0.0.1", resolve));
const origin = `http://localhost:${port}`;

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox"] });
let code = 1;
try {
  const page = await browser.newPage();
  page.on("console", (message) => console.log(`page: ${message.text()}`));
  const query = new URLSearchParams({ api, email, password });
  await page.goto(`${origin}/?${query}`);
  await page.waitForFunction(() => document.getElementById("result")?.textContent !== "running", null, { timeout: 30000 });
  const text = await page.textContent("#result");
  const result = JSON.parse(text.startsWith("error") ? "null" : text);
  if (result && result.ticketNumber > 0 && result.firstResponseDue && result.phase === "running") {
    console.log(`browser test: page on ${origin} opened ticket #${result.ticketNumber} at ${api} (first response due ${result.firstResponseDue}, clock ${result.phase})`);
    code = 0;
  } else {
    console.error(`browser test FAILED: ${text}`);
  }
} finally {
  await browser.close();
  server.close();
}
process.exit(code);
