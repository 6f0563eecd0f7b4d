// Shared pieces of the browser tests: a Tessera on loopback, Debian's Chromium, checks.
'use strict';

const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const SKIP = 77;
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

function env(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(name + ' is not set (run this test through ctest)');
  }
  return value;
}

function skip(why) {
  console.log('SKIP: ' + why);
  process.exit(SKIP);
}

// Loads playwright-core from the build tree, or skips when the browser or the package is absent.
function playwright() {
  if (!fs.existsSync(CHROMIUM)) {
    skip(CHROMIUM + ' is missing: install Debian\'s chromium package to run the browser tests');
  }
  const modules = env('TESSERA_NODE_MODULES');
  try {
    return require(path.join(modules, 'playwright-core'));
  } catch (e) {
    skip('playwright-core is not installed in ' + modules + ' (npm ci failed or npm is missing)');
  }
  return null;
}

// A fresh image root with, in a sub-folder, a pyramid big enough that zooming needs finer
// levels: the bundled retina scaled up by vips (the test oracle) to 5644 x 4233.
function makeRoot() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-e2e-root-'));
  fs.mkdirSync(path.join(root, 'eye'));
  const scaled = path.join(root, 'scaled.v');
  try {
    execFileSync('vips', ['resize', path.join(env('TESSERA_TEST_DATA'), 'retina-pyr-jpeg-256.tif'),
                          scaled, '4', '--vscale', '3'], { stdio: 'inherit' });
    execFileSync('vips', ['tiffsave', scaled, path.join(root, 'eye', 'retina.tif'), '--tile',
                          '--tile-width', '256', '--tile-height', '256', '--pyramid',
                          '--compression', 'jpeg', '--Q', '80'], { stdio: 'inherit' });
  } catch (e) {
    fs.rmSync(root, { recursive: true, force: true });
    throw new Error('cannot make the test pyramid with vips (libvips-tools): ' + e.message);
  }
  fs.rmSync(scaled);
  return root;
}

// Starts build/tessera on a free loopback port and resolves with its base URL.
function startServer(root) {
  return new Promise((resolve, reject) => {
    const proc = spawn(env('TESSERA_BIN'), ['--root', root, '--listen', '127.0.0.1:0'],
                       { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => reject(new Error('tessera did not start: ' + out)), 15000);
    proc.stdout.on('data', (chunk) => {
      out += chunk;
      const m = /tessera: listening on (http:\/\/127\.0\.0\.1:\d+)\//.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ base: m[1], proc: proc });
      }
    });
    proc.stderr.on('data', (chunk) => process.stderr.write(chunk));
    proc.on('exit', (code) => reject(new Error('tessera exited with ' + code + ': ' + out)));
  });
}

async function launch(pw) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-e2e-profile-'));
  const context = await pw.chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1280, height: 800 },
    timeout: 30000,
  });
  return { context: context, profile: profile };
}

// Watches a page: every request must go to the server's own origin, no script may fail.
function watch(page, base) {
  const seen = { foreign: [], errors: [], console: [], responses: [] };
  page.on('request', (req) => {
    const url = req.url();
    if (!url.startsWith(base + '/') && !url.startsWith('data:') && !url.startsWith('blob:')) {
      seen.foreign.push(url);
    }
  });
  page.on('response', (res) => seen.responses.push({ url: res.url(), status: res.status(),
                                                     type: res.headers()['content-type'] || '' }));
  page.on('pageerror', (e) => seen.errors.push('page error: ' + e.message));
  // Blocked scripts, styles or fetches and failed loads are errors; other console errors are
  // kept for tests that own all the page's code (libraries print deprecation notices there).
  page.on('console', (msg) => {
    if (msg.type() !== 'error') {
      return;
    }
    const text = msg.text();
    if (/Content Security Policy|Failed to load resource|Refused to/.test(text)) {
      seen.errors.push('console: ' + text);
    } else {
      seen.console.push('console: ' + text);
    }
  });
  return seen;
}

// Decodes a screenshot in a blank page and measures it: a picture that is all one flat colour,
// or almost so, is "blank".
async function pictureStats(context, png) {
  const page = await context.newPage();
  try {
    return await page.evaluate(async (b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const bitmap = await createImageBitmap(new Blob([bytes], { type: 'image/png' }));
      const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
      const g = canvas.getContext('2d');
      g.drawImage(bitmap, 0, 0);
      const px = g.getImageData(0, 0, bitmap.width, bitmap.height).data;
      const colours = new Set();
      let sum = 0;
      let sum2 = 0;
      const n = px.length / 4;
      for (let i = 0; i < px.length; i += 4) {
        const y = 0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2];
        sum += y;
        sum2 += y * y;
        colours.add((px[i] >> 3) << 10 | (px[i + 1] >> 3) << 5 | (px[i + 2] >> 3));
      }
      const mean = sum / n;
      return { width: bitmap.width, height: bitmap.height, mean: mean,
               stddev: Math.sqrt(Math.max(0, sum2 / n - mean * mean)), colours: colours.size };
    }, png.toString('base64'));
  } finally {
    await page.close();
  }
}

function assert(cond, message) {
  if (!cond) {
    throw new Error(message);
  }
}

// Runs body with a server and a browser, always cleans up, bounds the whole run in time.
async function run(name, limitMs, body) {
  const pw = playwright();
  const timer = setTimeout(() => {
    console.error(name + ': FAILED: still running after ' + limitMs / 1000 + ' s');
    process.exit(1);
  }, limitMs);
  let root = null;
  let server = null;
  let browser = null;
  let failed = false;
  try {
    root = makeRoot();
    server = await startServer(root);
    browser = await launch(pw);
    await body({ base: server.base, context: browser.context, root: root });
    console.log('1 passed, 0 failed');
  } catch (e) {
    failed = true;
    console.error(name + ': FAILED: ' + (e && e.stack ? e.stack : e));
    console.log('0 passed, 1 failed');
  } finally {
    if (browser) {
      await browser.context.close().catch(() => {});
      fs.rmSync(browser.profile, { recursive: true, force: true });
    }
    if (server) {
      server.proc.removeAllListeners('exit');
      server.proc.kill('SIGTERM');
    }
    if (root) {
      fs.rmSync(root, { recursive: true, force: true });
    }
    clearTimeout(timer);
  }
  process.exit(failed ? 1 : 0);
}

module.exports = { run, watch, pictureStats, assert, env, playwright, launch };
