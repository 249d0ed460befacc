// The README's frontend promise, in a real browser: a page on another origin, using axios and the
// README's interceptor as written, can read every answer of the API (the error's `detail` in the
// toast, `x-request-id`, `Location`), and a page on an origin not on the list can read none.
//
//   API_URL=http://127.0.0.1:9000 node --test tests/browser/browser.test.mjs
//
// `make test` runs it against `make dev` (scripts/smoke_dev.py), whose default CORS list allows
// http://localhost:* and http://127.0.0.1:*. The page is served from 127.0.0.1 on a port of its
// own (allowed), and again as http://disallowed.test:<port>, a name Chromium is told resolves to
// 127.0.0.1 (not allowed). Chromium is Debian's (/usr/bin/chromium, or CHROMIUM), driven by
// playwright-core over the DevTools protocol: no browser download.

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import http from "node:http";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const apiUrl = process.env.API_URL ?? "http://127.0.0.1:9000";
const fallback = "Network error, please try again";

/** The README's interceptor: the first ```js block of the "A frontend needs one error path" section. */
async function readmeInterceptor() {
  const readme = await readFile(join(root, "README.md"), "utf8");
  const section = readme.split("### A frontend needs one error path")[1];
  assert.ok(section, "README.md has a section 'A frontend needs one error path'");
  const block = section.match(/```js\n([\s\S]*?)```/);
  assert.ok(block, "that section has a ```js block");
  assert.ok(block[1].includes(fallback), `the interceptor's fallback text is still "${fallback}"`);
  return block[1];
}

let server;
let pagePort;
let browser;

before(async () => {
  const files = {
    "/page.html": ["text/html", await readFile(join(here, "page.html"))],
    "/axios.min.js": ["text/javascript", await readFile(join(here, "node_modules/axios/dist/axios.min.js"))],
    "/interceptor.js": ["text/javascript", await readmeInterceptor()],
  };
  server = http.createServer((request, response) => {
    const file = files[new URL(request.url, "http://page").pathname];
    if (!file) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { "content-type": file[0] }).end(file[1]);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  pagePort = server.address().port;
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--host-resolver-rules=MAP disallowed.test 127.0.0.1",
    ],
  });
});

after(async () => {
  await browser?.close();
  server?.close();
});

/** Opens the page on `origin` and returns what it recorded, by call name. */
async function walk(origin) {
  const page = await browser.newPage();
  try {
    const run = `${Date.now()}-${Math.random().toString(16).slice(2, 8)}`;
    await page.goto(`${origin}/page.html?api=${encodeURIComponent(apiUrl)}&run=${run}`);
    await page.waitForFunction(() => window.results !== undefined, null, { timeout: 300_000 });
    const failure = await page.evaluate(() => window.failure ?? null);
    assert.equal(failure, null, "the page's walk threw");
    const results = await page.evaluate(() => window.results);
    return Object.fromEntries(results.map((r) => [r.name, r]));
  } finally {
    await page.close();
  }
}

/** An error the page must be able to read: the toast is the body's detail, the ids agree. */
function assertReadableError(result, status, code) {
  assert.equal(result.network_error, false, `${result.name}: a network error, not an answer`);
  assert.equal(result.status, status, `${result.name}: ${JSON.stringify(result.body)}`);
  assert.equal(result.body?.code, code, result.name);
  assert.equal(typeof result.body?.detail, "string", result.name);
  assert.equal(result.toast, result.body.detail, `${result.name}: the toast shows the body's detail`);
  assert.ok(result.request_id, `${result.name}: x-request-id is readable`);
  assert.equal(result.request_id, result.body.request_id, `${result.name}: x-request-id = request_id`);
}

function assertReadableSuccess(result, status) {
  assert.equal(result.rejected, false, `${result.name}: ${JSON.stringify(result)}`);
  assert.equal(result.status, status, result.name);
  assert.equal(result.toast, null, `${result.name}: no toast on success`);
  assert.ok(result.request_id, `${result.name}: x-request-id is readable`);
}

test("a page on an allowed origin reads every answer", async () => {
  const seen = await walk(`http://127.0.0.1:${pagePort}`);

  assertReadableSuccess(seen["health"], 200);
  assert.equal(seen["health"].body.status, "ok");

  const signUp = seen["sign up"];
  assertReadableSuccess(signUp, 201);
  assert.equal(signUp.location, `/users/${signUp.body.id}`, "sign-up's Location is readable");

  assertReadableError(seen["duplicate sign-up"], 409, "user_exists");
  assertReadableError(seen["invalid body"], 422, "validation_error");
  assert.ok(seen["invalid body"].body.errors.length >= 3, "the 422 names each field");
  assertReadableError(seen["wrong password"], 401, "invalid_credentials");
  assertReadableSuccess(seen["login"], 200);
  assertReadableSuccess(seen["own profile"], 200);
  assert.equal(seen["own profile"].body.id, signUp.body.id);
  assertReadableError(seen["no token"], 401, "not_authenticated");
  assertReadableError(seen["unknown route"], 404, "not_found");
  assertReadableError(seen["text/plain body"], 415, "unsupported_media_type");

  const limited = Object.values(seen).filter((r) => r.name.startsWith("limited login"));
  const last = limited.at(-1);
  for (const refused of limited.slice(0, -1)) {
    assertReadableError(refused, 401, "invalid_credentials");
  }
  assertReadableError(last, 429, "too_many_attempts");
  assert.match(last.retry_after ?? "", /^[0-9]+$/, "Retry-After is readable");
});

test("a page on an origin not on the list reads nothing", async () => {
  const seen = await walk(`http://disallowed.test:${pagePort}`);
  const names = Object.keys(seen);
  assert.ok(names.length >= 10, `the page made its calls: ${names}`);
  for (const result of Object.values(seen)) {
    assert.equal(result.network_error, true, `${result.name}: readable from a disallowed origin: ${JSON.stringify(result)}`);
    assert.equal(result.toast, fallback, `${result.name}: only the interceptor's fallback text`);
    assert.equal(result.request_id, null, result.name);
  }
});
