// First load of the counter page on a slow terminal: Debian's chromium with
// its CPU slowed 6x (DevTools' CPU throttling, a low-end kiosk), a new
// browser context each time (nothing cached), against a real loyaltyd.
// Prints the median time from navigation to the sign-in form ready for
// typing, the bytes the page loads, and the ratio to a baseline measured in
// the same run: the same browser loading loyaltyd's smallest answer
// (/v1/health), which is what any page from this daemon costs at least.
//
//   node bench/counter_load.mjs [LOADS]   (LOYALTY_BUILD_DIR, default build/release)
import {Store, browser} from '../tests/browser/stack.js';

const loads = Number(process.argv[2] || 15);
const store = new Store();
await store.start();
const chrome = await browser();

async function timeLoad(url, ready) {
  const context = await chrome.newContext({viewport: {width: 1024, height: 768}});
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Emulation.setCPUThrottlingRate', {rate: 6});
  const start = performance.now();
  await page.goto(url);
  await ready(page);
  const ms = performance.now() - start;
  // What came over the wire: the document and every file it loaded.
  const bytes = await page.evaluate(() => performance.getEntriesByType('navigation')
    .concat(performance.getEntriesByType('resource'))
    .reduce((n, e) => n + e.encodedBodySize, 0));
  await context.close();
  return {ms, bytes};
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const base = [], page = [];
let bytes = 0;
for (let i = 0; i < loads; i++) {
  base.push((await timeLoad(store.url.replace('/counter/', '/v1/health'),
    (p) => p.waitForLoadState('load'))).ms);
  const r = await timeLoad(store.url, async (p) => {
    await p.getByLabel('工号').waitFor();
    await p.waitForLoadState('load');
  });
  page.push(r.ms);
  bytes = r.bytes;
}
await chrome.close();
await store.stop();
const b = median(base), c = median(page);
console.log(`counter page first load (CPU 6x slower, no cache): median ${c.toFixed(0)} ms ` +
  `over ${loads} loads, ${bytes} bytes`);
console.log(`baseline (/v1/health in the same browser): median ${b.toFixed(0)} ms`);
console.log(`ratio to baseline: ${(c / b).toFixed(2)}; goal: under 1000 ms -> ` +
  (c < 1000 ? 'met' : 'NOT met'));
