// Loads dashboard pages in headless Chromium (driven by playwright-core) and reports what
// the browser saw as JSON on stdout: console errors, failed and foreign requests, the
// campaign rows, the sparklines' and charts' plotted data and coordinates, and the status
// of every link. The Rust test (tests/dashboard_browser.rs) writes the job file and makes
// every assertion; this script only observes.
//
// Usage: node tests/dashboard/browser.mjs JOB.json
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';

const job = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const { chromium } = await import(pathToFileURL(join(job.tools, 'playwright-core', 'index.mjs')).href);

const browser = await chromium.launch({
  executablePath: job.chromium,
  headless: true,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});

async function linkStatus(page, href) {
  const url = new URL(href);
  if (url.protocol === 'file:') {
    return existsSync(fileURLToPath(url)) ? 200 : 404;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return -1;
  }
  try {
    const r = await page.request.get(href, { maxRedirects: 0, timeout: 10000 });
    return r.status();
  } catch (e) {
    return -2;
  }
}

async function observe(page, visit) {
  const out = { name: visit.name, console: [], requests: [], failed: [] };
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') out.console.push(`${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => out.console.push(`pageerror: ${e.message}`));
  page.on('request', (r) => out.requests.push(r.url()));
  page.on('requestfailed', (r) => out.failed.push(`${r.url()}: ${r.failure()?.errorText}`));
  const response = await page.goto(visit.url, { waitUntil: 'load' });
  out.status = response ? response.status() : 0;
  out.final_url = page.url();
  out.content_security_policy = response ? (await response.allHeaders())['content-security-policy'] ?? null : null;
  const seen = await page.evaluate(() => {
    const num = (el, name) => Number(el.getAttribute(name));
    const rows = [...document.querySelectorAll('tr.campaign')].map((tr) => ({
      id: tr.dataset.id,
      status: tr.dataset.status,
      href: tr.querySelector('a.campaign-link')?.getAttribute('href') ?? null,
    }));
    const sparklines = [...document.querySelectorAll('tr.campaign svg.spark polyline.gap-line')].map((p) => ({
      id: p.closest('tr').dataset.id,
      scenario: p.dataset.scenario,
      rounds: p.dataset.rounds.split(',').map(Number),
      gaps: p.dataset.gaps.split(',').map(Number),
      xs: [...p.points].map((pt) => pt.x),
      ys: [...p.points].map((pt) => pt.y),
      zero: p.ownerSVGElement.querySelector('line.zero').y1.baseVal.value,
    }));
    const charts = [...document.querySelectorAll('figure.chart-box')].map((f) => ({
      scenario: f.dataset.scenario,
      zero: f.querySelector('line.zero').y1.baseVal.value,
      points: [...f.querySelectorAll('circle.pt')].map((c) => ({
        round: num(c, 'data-round'), gap: num(c, 'data-gap'),
        cx: c.cx.baseVal.value, cy: c.cy.baseVal.value,
        visible: c.getBoundingClientRect().width > 0,
      })),
    }));
    const rounds = [...document.querySelectorAll('tr.round')].map((tr) => Number(tr.dataset.round));
    const links = [...document.querySelectorAll('a[href]')].map((a) => a.href);
    const state = document.querySelector('#state')?.innerText ?? null;
    return { rows, sparklines, charts, rounds, links, state, text: document.body.innerText, scripts: document.scripts.length };
  });
  Object.assign(out, seen);
  out.link_status = [];
  for (const href of [...new Set(out.links)]) {
    out.link_status.push({ href, status: await linkStatus(page, href) });
  }
  if (visit.screenshot) {
    await page.screenshot({ path: visit.screenshot, fullPage: visit.full_page ?? true });
  }
  return out;
}

const results = { visits: [] };
for (const visit of job.visits) {
  const context = await browser.newContext({
    extraHTTPHeaders: visit.headers ?? {},
    viewport: { width: visit.width ?? 1280, height: visit.height ?? 800 },
  });
  const page = await context.newPage();
  if (visit.sign_in_token !== undefined) {
    // Sign in through the form, then look at the page the form leads to.
    await page.goto(visit.sign_in_url);
    await page.fill('#token', visit.sign_in_token);
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    results.sign_in_landed_on = page.url();
  }
  results.visits.push(await observe(page, visit));
  await context.close();
}
await browser.close();
process.stdout.write(JSON.stringify(results));
