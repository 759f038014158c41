// myNEWS and the console in a real browser: headless Chromium from Debian's packages
// (/usr/bin/chromium), driven by playwright-core, against the real stack that
// tests/tests/browser.rs starts. The two talk over lines: this script prints `WAIT <step>` when
// it needs the stack to do something (submit a story, send a flash) and reads `OK <answer>`.
// axe-core checks every page for WCAG 2 A/AA violations; screenshots go to $SCREENSHOTS_DIR.
import fs from "node:fs";
import readline from "node:readline";
import { chromium } from "playwright-core";

const base = process.env.WEB_URL;
const shots = process.env.SCREENSHOTS_DIR;
const input = readline.createInterface({ input: process.stdin });
const lines = input[Symbol.asyncIterator]();

async function ask(step) {
  console.log(`WAIT ${step}`);
  const { value } = await lines.next();
  if (!value || !value.startsWith("OK")) throw new Error(`${step}: the test answered ${value}`);
  return value.slice(3);
}

function check(ok, what) {
  if (!ok) throw new Error(what);
}

const axeSource = fs.readFileSync(new URL("./node_modules/axe-core/axe.min.js", import.meta.url), "utf8");

async function accessible(page, name) {
  await page.addScriptTag({ content: axeSource });
  const result = await page.evaluate(() =>
    window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } }));
  const found = result.violations.map((v) => `${v.id} ×${v.nodes.length}: ${v.help} (${v.nodes[0].target})`);
  check(found.length === 0, `${name}: accessibility violations: ${found.join("; ")}`);
  console.log(`AXE ${name}: no violations (${result.passes.length} rules passed)`);
}

/** Reloads `page` until `selector` is there (the feed is ranked on each request). */
async function until(page, url, selector, seconds = 60) {
  const end = Date.now() + seconds * 1000;
  for (;;) {
    await page.goto(url);
    if ((await page.locator(selector).count()) > 0) return;
    if (Date.now() > end) throw new Error(`${selector} not on ${url} within ${seconds} s`);
    await page.waitForTimeout(1000);
  }
}

async function signIn(page, user, editor) {
  await page.goto(`${base}/`);
  check(page.url().endsWith("/signin"), `signed out, / leads to the sign-in (got ${page.url()})`);
  await page.fill("#user", user);
  if (editor) await page.check("input[name=editor]");
  await page.click("form button[type=submit]");
  await page.waitForURL(`${base}/`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
try {
  // A reader on a phone-sized screen, in London.
  const reader = await browser.newContext({ viewport: { width: 390, height: 844 }, timezoneId: "Europe/London", locale: "en-GB" });
  const page = await reader.newPage();
  await signIn(page, "pat", false);
  await page.waitForSelector("h1:has-text('Your news, pat')");

  // Keyboard: the first Tab lands on "Skip to content".
  await page.keyboard.press("Tab");
  check(await page.evaluate(() => document.activeElement.classList.contains("skip")), "the first Tab reaches the skip link");

  const seeded = await ask("seeded");
  await until(page, `${base}/`, `article:has-text(${JSON.stringify(seeded)})`);
  await accessible(page, "myNEWS");

  // Follow science and technology from the story's chip (htmx swaps the pressed chip in).
  const card = page.locator("article", { hasText: seeded });
  await card.locator("button.chip.topic", { hasText: "science and technology" }).first().click();
  await page.waitForSelector("button.chip.topic[aria-pressed='true']");
  console.log("followed science and technology from a chip");

  const next = await ask("followed");
  await until(page, `${base}/`, `article:has-text(${JSON.stringify(next)})`);
  const reasons = await page.locator("article", { hasText: next }).locator(".reasons").innerText();
  check(reasons.includes("You follow Science and technology"), `the new story says why: ${reasons}`);
  console.log("the new story arrived in the feed with its reason");

  // A flash arrives live while the page is open.
  await page.waitForTimeout(1500); // the page's event stream connects
  const flash = await ask("live");
  await page.waitForSelector(`.alert.flash:has-text(${JSON.stringify(flash)})`, { timeout: 60000 });
  console.log("the flash appeared live");
  if (shots) await page.screenshot({ path: `${shots}/mynews.png` });

  // Quiet hours around now, in the reader's zone: the next non-critical alert is held.
  await page.goto(`${base}/preferences`);
  await accessible(page, "preferences");
  const hour = Number(new Intl.DateTimeFormat("en-GB", { hour: "2-digit", hour12: false, timeZone: "Europe/London" }).format(new Date()));
  const hh = (h) => String((h + 24) % 24).padStart(2, "0") + ":00";
  await page.fill("#quiet_start", hh(hour - 1));
  await page.fill("#quiet_end", hh(hour + 2));
  await page.click("form.card button[type=submit]");
  await page.waitForSelector("text=Saved.");
  await page.goto(`${base}/`);
  await page.waitForTimeout(1500);
  const held = await ask("quiet");
  await page.waitForTimeout(4000);
  check((await page.locator(`.alert:has-text(${JSON.stringify(held)})`).count()) === 0, "an alert in quiet hours does not show");
  console.log("the alert in quiet hours was held");

  // An editor previews an alert, a second editor approves the large one, counts reach done, and
  // the alert is withdrawn from the phones.
  const editor = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const ed = await editor.newPage();
  await signIn(ed, "ed", true);
  const story = await ask("console");
  await until(ed, `${base}/console`, `tr[data-story=${JSON.stringify(story)}]`);
  await accessible(ed, "console");
  await ed.goto(`${base}/console/dead-letters`);
  await ed.waitForSelector("h1:has-text('Dead letters')");
  await accessible(ed, "dead letters");
  await ed.goto(`${base}/console`);
  await ed.fill("#story_id", story);
  await ed.selectOption("#audience", "everyone");
  await ed.click("form[action='/console/alerts/preview'] button[type=submit]");
  await ed.waitForSelector("#alert-preview");
  const approval = await ed.locator("a.approval-link").getAttribute("href");
  check(approval && approval.startsWith("/console/approve?token="), "a large alert needs a second editor's link");
  console.log("the preview asks for a second editor");

  const second = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const eve = await second.newPage();
  await signIn(eve, "eve", true);
  await eve.goto(`${base}${approval}`);
  await eve.click("button:has-text('Approve and send')");
  await eve.waitForSelector("#alert-status h3:has-text('Alert done')", { timeout: 90000 });
  const sent = Number(await eve.locator("#alert-status dd.sent").innerText());
  check(sent >= 2, `the approved alert went to the audience (sent ${sent})`);
  console.log(`approved by a second editor; done, sent ${sent}`);

  // The editor's desk: the story's versions with their traces; withdrawing the alert reaches
  // the phones it went to.
  await ed.goto(`${base}/story/${story}`);
  await ed.waitForSelector("table.versions a.trace");
  await accessible(ed, "editor's desk");
  await ed.click("button:has-text('Withdraw its alert')");
  await ed.waitForURL(/retracted=1/);
  const withdrawn = Number(await ask("retracted"));
  check(withdrawn >= 2, `the retraction reached both phones (${withdrawn})`);
  console.log(`the alert was withdrawn from ${withdrawn} phones`);
  if (shots) {
    await ed.goto(`${base}/console`);
    await ed.screenshot({ path: `${shots}/console.png` });
  }
  console.log("DONE");
} finally {
  await browser.close();
  input.close();
}
