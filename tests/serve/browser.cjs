// The page of bin/hlr-serve in a real browser: Debian's Chromium, headless, driven by playwright-core.
// It writes digits on the canvas with pointer events (the mouse's), presses Recognise, reads the answer
// from the page and checks it; it also checks Undo and Clear, the three confidence bars and the
// saliency picture, and saves a screenshot.
//
//   node tests/serve/browser.cjs URL SCREENSHOT.png     (NODE_PATH: where playwright-core is installed)
//
// Exit status 0 when every check passed; otherwise one line on stderr per failure and exit 1.
"use strict";
const { chromium } = require("playwright-core");

const [url, shot] = process.argv.slice(2);
if (!url || !shot) {
  console.error("usage: node tests/serve/browser.cjs URL SCREENSHOT.png");
  process.exit(2);
}

// Strokes in the unit square of the canvas (x, y from its top left), as a writer would draw each digit.
function ellipse(cx, cy, rx, ry, n) {
  const pts = [];
  for (let i = 0; i <= n; i++) {
    const a = -Math.PI / 2 + (2 * Math.PI * i) / n;
    pts.push([cx + rx * Math.cos(a), cy + ry * Math.sin(a)]);
  }
  return pts;
}
const digits = {
  "1": [[[0.52, 0.15], [0.50, 0.85]]],
  "7": [[[0.25, 0.18], [0.75, 0.18], [0.62, 0.45], [0.48, 0.85]]],
  "0": [ellipse(0.5, 0.5, 0.2, 0.32, 32)],
};

async function draw(page, strokes) {
  const box = await page.locator("#pad").boundingBox();
  for (const stroke of strokes) {
    const at = (p) => [box.x + p[0] * box.width, box.y + p[1] * box.height];
    await page.mouse.move(...at(stroke[0]));
    await page.mouse.down();
    for (let i = 1; i < stroke.length; i++) {
      const [x, y] = at(stroke[i]);
      await page.mouse.move(x, y, { steps: 8 }); // pointermove events along the way
    }
    await page.mouse.up();
  }
}

async function recognise(page) {
  await page.locator("#answer").evaluate((e) => (e.textContent = ""));
  await page.click("#recognise");
  await page.waitForFunction(() => document.querySelector("#answer").textContent !== "" ||
                                   document.querySelector("#status").className === "error", null, { timeout: 20000 });
  return {
    answer: await page.locator("#answer").textContent(),
    status: await page.locator("#status").textContent(),
    bars: await page.locator("#top .bar").count(),
    saliency: await page.locator("#look img").count(),
    overlay: await page.locator("#overlay").evaluate((e) => e.style.display === "block" && e.naturalWidth > 0),
  };
}

(async () => {
  const failures = [];
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    // as root in a container, and with no network beyond loopback: no sandbox, no background traffic
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 760 } });
    page.on("pageerror", (e) => failures.push("the page threw: " + e.message));
    const requests = [];
    page.on("request", (r) => requests.push(r.url()));
    await page.goto(url);
    await page.waitForFunction(() => document.querySelector("#status").textContent === "ready", null,
                               { timeout: 20000 });
    for (const [digit, strokes] of Object.entries(digits)) {
      await page.click("#clear");
      await draw(page, strokes);
      const r = await recognise(page);
      console.log(`drew ${digit}: the page says ${r.answer} (${r.status})`);
      if (r.answer !== digit) failures.push(`drew ${digit}, the page read '${r.answer}' (${r.status})`);
      if (r.bars !== 3) failures.push(`drew ${digit}: ${r.bars} confidence bars, expected 3`);
      if (r.saliency !== 1) failures.push(`drew ${digit}: no saliency picture`);
      if (!r.overlay) failures.push(`drew ${digit}: no saliency over the strokes`);
    }
    // Undo takes back the last stroke: a 1 with a stray stroke, undone, reads as a 1 again.
    await page.click("#clear");
    await draw(page, digits["1"]);
    await draw(page, [[[0.1, 0.9], [0.9, 0.9]]]);
    await page.click("#undo");
    const undone = await recognise(page);
    if (undone.answer !== "1") failures.push(`a 1 with a stroke undone read as '${undone.answer}'`);
    // Clear empties the page: recognising nothing is refused on the page, without a request.
    await page.click("#clear");
    const before = requests.length;
    await page.click("#recognise");
    const msg = await page.locator("#status").textContent();
    if (!/write something first/.test(msg) || requests.length !== before)
      failures.push(`recognising an empty pad: '${msg}'`);
    // Draw a 7 again for the screenshot.
    await draw(page, digits["7"]);
    await recognise(page);
    await page.screenshot({ path: shot });
    const elsewhere = requests.filter((u) => !u.startsWith(url.replace(/\/$/, "")) && !u.startsWith("data:"));
    if (elsewhere.length) failures.push("the page fetched from elsewhere: " + elsewhere.join(" "));
  } catch (e) {
    failures.push(e.message.split("\n")[0]);
  } finally {
    await browser.close();
  }
  for (const f of failures) console.error("browser test: " + f);
  process.exit(failures.length ? 1 : 0);
})();
