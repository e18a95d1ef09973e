// Drives the person's portal (/portal) in Debian's headless Chromium through the DevTools
// protocol (puppeteer-core), as tests/portal.rs asks: log in by keyboard with the
// person's token, read the first page, accept a time, add a commitment of one's own,
// reload and read again, check the page with axe-core (WCAG 2.1 A and AA), and take
// screenshots at desktop and phone width. Prints one JSON object of what it saw; the
// Rust test asserts on it. Installed by scripts/test.sh under target/portal-node.
//
// With a fourth argument `start`, the person has no contract yet and starts one; with
// `smart`, they log in at the identity provider instead (TOKEN is then unused).
//
// Usage: node drive.mjs BASE_URL TOKEN OUT_DIR [start]
// (PKGW_PORTAL_NODE: where node_modules is; PKGW_CHROMIUM: the browser)

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const [base, token, out, mode] = process.argv.slice(2);
const require = createRequire(path.join(process.env.PKGW_PORTAL_NODE, 'package.json'));
const puppeteer = require('puppeteer-core');
// Evaluated through the protocol, which the page's Content-Security-Policy (scripts
// from its own origin only) does not stop, so the page is checked with it in force.
const axe = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

const browser = await puppeteer.launch({
  executablePath: process.env.PKGW_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--lang=sv-SE'],
  env: { ...process.env, TZ: 'Europe/Stockholm' },
});
const seen = { steps: [] };
const step = (name, value) => seen.steps.push({ name, ...value });
try {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  // Every failed request is an error, but the one a person without a contract gets
  // from $coordinated-plan (404: nothing in force), which the page expects.
  page.on('response', (r) => {
    const expected = mode === 'start' && r.status() === 404 && r.url().endsWith('/$coordinated-plan');
    if (r.status() >= 400 && !expected) errors.push(`${r.status()} ${r.request().method()} ${r.url()}`);
  });
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text());
  });
  // Visits the page as the mode says; what axe-core found on the way.
  seen.violations = await (async () => {
    await page.setViewport({ width: 1280, height: 900 });
    await page.goto(`${base}/portal`, { waitUntil: 'load' });
    const text = () => page.$eval('main', (m) => m.innerText);
    const settled = () => page.waitForFunction(
      () => !document.querySelector('button:disabled')
        && (document.querySelector('#meddelande').textContent || document.querySelector('#fel').textContent),
      { timeout: 15000 },
    );
    const clear = () => page.$$eval('#meddelande, #fel', (els) => els.forEach((e) => { e.textContent = ''; }));

    if (mode === 'smart') {
      // Log in at the identity provider (a SMART standalone launch) and come back.
      await Promise.all([
        page.waitForNavigation({ waitUntil: 'load' }),
        page.click('#logga-in-idp'),
      ]);
      await page.waitForSelector('#kontrakt:not([hidden]) h1', { timeout: 15000 });
      step('smart', { text: await text(), url: page.url() });
      await page.reload({ waitUntil: 'load' });
      await page.waitForSelector('#kontrakt:not([hidden]) h1', { timeout: 15000 });
      step('reload', { text: await text(), url: page.url() });
      return axeCheck(page);
    }

    // Keyboard only: the skip link, then the token field, then the button.
    const focused = () => page.evaluate(() => {
      const a = document.activeElement;
      return a ? (a.id || a.textContent.trim()) : '';
    });
    const tabs = [];
    for (let i = 0; i < 4; i += 1) {
      await page.keyboard.press('Tab');
      tabs.push(await focused());
      if (tabs[tabs.length - 1] === 'nyckel') break;
    }
    await page.keyboard.type(token.slice(0, 20));
    await page.$eval('#nyckel', (t, rest) => { t.value += rest; }, token.slice(20));
    await page.keyboard.press('Tab');
    const onButton = await focused();
    await page.keyboard.press('Enter');
    await page.waitForSelector('#kontrakt:not([hidden]) h1', { timeout: 15000 });
    step('login', { tabs, onButton, url: page.url() });
    const said = async () => ({
      said: await page.$eval('#meddelande', (e) => e.textContent),
      error: await page.$eval('#fel', (e) => e.textContent),
    });

    if (mode === 'start') {
      step('no contract', { text: await text() });
      const startCheck = await axeCheck(page);
      await clear();
      await page.type('.starta textarea', 'Att kunna cykla till jobbet igen');
      await page.click('.starta button[type="submit"]');
      await settled();
      step('start', await said());
      await page.reload({ waitUntil: 'load' });
      await page.waitForSelector('#kontrakt:not([hidden]) h1', { timeout: 15000 });
      step('reload', { text: await text(), url: page.url() });
      // Done: the rest is for a contract in force.
      return [...startCheck, ...await axeCheck(page)];
    }
    const firstPage = await text();
    step('first page', { text: firstPage });
    const login = await axeCheck(page);
    await page.screenshot({ path: path.join(out, 'portal-desktop.png'), fullPage: true });

    // Accept the first time that asks for an answer.
    await clear();
    const accepted = await page.$$eval('.tidlista li', (items) => {
      const item = items.find((li) => [...li.querySelectorAll('button')]
        .some((b) => b.textContent === 'Jag kan komma'));
      if (!item) return null;
      const about = item.querySelector('p').textContent;
      [...item.querySelectorAll('button')].find((b) => b.textContent === 'Jag kan komma').click();
      return about;
    });
    if (accepted) await settled();
    step('accept', { time: accepted, ...await said() });

    // A commitment of the person's own.
    await clear();
    await page.type('.eget-atagande input[name="vad"]', 'Jag väger mig varje morgon');
    await page.type('.eget-atagande input[name="nar"]', 'varje morgon');
    await page.click('.eget-atagande button[type="submit"]');
    await settled();
    step('commitment', await said());

    // What matters: one more, and one changed.
    await clear();
    await page.type('.nytt-mal input', 'Att kunna plocka svamp i höst');
    await page.click('.nytt-mal button');
    await settled();
    step('what matters', await said());
    await clear();
    await page.$$eval('.mal li', (items) => items[0].querySelector('button').click());
    await page.$eval('.mal li form input', (i) => { i.value = ''; });
    await page.type('.mal li form input', 'Att orka gå med hunden runt hela sjön');
    await page.click('.mal li form button');
    await settled();
    step('what matters changed', await said());

    // Ask to be contacted, then say "vi är överens".
    await clear();
    await page.select('.kontakt select', 'ny-tid');
    await page.type('.kontakt textarea', 'Kan vi ses en eftermiddag i stället?');
    await page.click('.kontakt button');
    await settled();
    step('contact', await said());
    await clear();
    await page.click('.overens');
    await settled();
    step('confirm', await said());

    // 7 frågor.
    await clear();
    await page.$$eval('.sju-fragor fieldset', (sets) => sets.forEach((set) => {
      set.querySelector('input[type="radio"]').click();
    }));
    await page.click('.sju-fragor button[type="submit"]');
    await settled();
    step('7 frågor', await said());

    // What the page shows after a reload (the token is kept for the tab, not in the URL).
    await page.reload({ waitUntil: 'load' });
    await page.waitForSelector('#kontrakt:not([hidden]) h1', { timeout: 15000 });
    step('reload', { text: await text(), url: page.url() });
    const after = await axeCheck(page);

    await page.setViewport({ width: 375, height: 812, isMobile: true, hasTouch: true });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth
      - document.documentElement.clientWidth);
    await page.screenshot({ path: path.join(out, 'portal-phone.png'), fullPage: true });
    const phone = await axeCheck(page);
    step('phone', { overflow });
    return [...login, ...after, ...phone];
  })();
  seen.errors = errors;
} catch (e) {
  seen.failure = String(e && e.stack ? e.stack : e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));

// axe-core's WCAG 2.1 A and AA rules on the page as it is.
async function axeCheck(page) {
  await page.evaluate(axe);
  return page.evaluate(async () => {
    const result = await window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
    });
    return result.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 3).map((n) => n.html),
    }));
  });
}
