// Opens the page in headless Debian Chromium (playwright-core), signs in and joins, and prints
// what a person would see as JSON. Used by tests/web/test_web_page_browser.py.
// usage: node tools/browser_check.mjs '<json: {url, apiKey, name, room, screenshot, userDataDir, killBeforeJoin}>'
import { chromium } from 'playwright-core';

const options = JSON.parse(process.argv[2]);
const context = await chromium.launchPersistentContext(options.userDataDir, {
  executablePath: options.executablePath ?? '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--use-fake-ui-for-media-stream',
    '--use-fake-device-for-media-stream',
  ],
  viewport: { width: 1200, height: 800 },
});
const result = { console: [], tokenResponses: [] };
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (message) => {
    if (message.type() === 'error') result.console.push(message.text());
  });
  page.on('pageerror', (error) => result.console.push(`pageerror: ${error.message}`));
  page.on('response', async (response) => {
    if (new URL(response.url()).pathname !== '/token') return;
    result.tokenResponses.push({ status: response.status(), body: await response.json().catch(() => null) });
  });
  await page.goto(options.url, { waitUntil: 'load', timeout: 60_000 });
  result.title = await page.title();
  if (options.name) await page.fill('#name', options.name);
  if (options.apiKey) await page.fill('#api-key', options.apiKey);
  if (options.room) await page.fill('#room', options.room);
  if (options.killBeforeJoin) {
    process.kill(options.killBeforeJoin, 'SIGKILL'); // the token server goes away after the page loaded
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  await page.click('#join');
  await page.waitForSelector('#error:not([hidden]), #call:not([hidden])', { timeout: 90_000 });
  result.error = (await page.locator('#error').isVisible()) ? await page.textContent('#error') : null;
  result.connection = await page.textContent('#connection');
  result.joinEnabled = await page.isEnabled('#join');
  if (options.screenshot) await page.screenshot({ path: options.screenshot, fullPage: true });
} finally {
  await context.close();
}
process.stdout.write(JSON.stringify(result));
