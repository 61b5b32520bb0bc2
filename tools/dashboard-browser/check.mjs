// Drives the dashboard in headless Chromium for tests/api/test_dashboard.py.
// Usage: node check.mjs BASE_URL SCREENSHOT_PATH USER_DATA_DIR COLLABORATIVE_CODE
// Signs in as the demo dashboard client, waits for the scorecard, prints it as one JSON line,
// writes a screenshot; then reads one line from stdin ("go" after the test submitted data, or
// "stop"), and with "go" waits for the live update and prints the refreshed scorecard.
import { chromium } from "playwright-core";
import { createInterface } from "node:readline";

const [baseUrl, screenshotPath, userDataDir, collaborativeCode] = process.argv.slice(2);

async function readScorecard(page) {
  return page.$$eval("#scorecard tbody tr", (rows) =>
    rows.map((row) => {
      const value = (field) => {
        const raw = row.querySelector(`td[data-field="${field}"]`).dataset.value;
        return raw === "" ? null : Number(raw);
      };
      return {
        measure: row.dataset.measure,
        rate: value("rate"),
        goal: value("goal"),
        teamsMeetingGoal: value("teams-meeting-goal"),
        rateText: row.querySelector('td[data-field="rate"]').textContent,
        signals: row.querySelector('td[data-field="signals"]').textContent,
      };
    }),
  );
}

const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
  viewport: { width: 1366, height: 900 },
});
try {
  const page = context.pages()[0] || (await context.newPage());
  const problems = [];
  page.on("pageerror", (error) => problems.push(String(error)));
  await page.goto(`${baseUrl}/dashboard`);
  await page.fill("#client-id", "demo-dashboard");
  await page.fill("#client-secret", "demo-dashboard-secret");
  await page.click("#signin-button");
  await page.waitForSelector('body[data-ready="true"]', { timeout: 30000 });
  await page.selectOption("#collaborative", collaborativeCode);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 30000 });
  await page.waitForSelector('#live[data-connected="true"]', { timeout: 15000 });
  const collaborative = await page.$eval("#collaborative", (select) => select.value);
  const charts = await page.$$eval("svg[role=img]", (nodes) => nodes.length);
  const stored = await page.evaluate(() => localStorage.length + document.cookie.length);
  const status = await page.$eval("#status", (node) => node.textContent);
  await page.screenshot({ path: screenshotPath, fullPage: true });
  const scorecard = await readScorecard(page);
  console.log(JSON.stringify({ collaborative, scorecard, charts, stored, status, problems }));

  const lines = createInterface({ input: process.stdin });
  const command = await new Promise((resolve) => lines.once("line", resolve));
  if (command.trim() === "go") {
    const live = await page
      .waitForSelector('#live:not([data-live-updates="0"])', { timeout: 20000 })
      .then(() => page.$eval("#live", (node) => node.textContent))
      .catch(async (error) => `no live update (${error.name}): ${await page.$eval("#live", (node) => node.textContent)}; ${await page.$eval("#status", (node) => node.textContent)}`);
    console.log(JSON.stringify({ live, scorecard: await readScorecard(page), problems }));
  }
  lines.close();
} finally {
  await context.close();
}
