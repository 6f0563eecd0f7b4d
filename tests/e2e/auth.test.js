// The IIIF Authorization Flow 2.0 in headless Chromium, from a viewer on another origin of the
// same site (http://localhost:A viewing http://localhost:B): info.json says 401 and names the
// probe; the probe says 401; the login page opens in a new window and closes itself; the token
// iframe posts a token; the probe then says 200 and the full image loads. A click-through works
// the same way from its degraded image, and logout brings the degraded image back.
'use strict';

const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { assert, env, playwright, launch } = require('./harness.js');

const SECRET = 'e2e-secret-0123456789abcdef0123456789';

function makeRoot() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tessera-e2e-auth-'));
  const image = path.join(env('TESSERA_TEST_DATA'), 'retina-pyr-jpeg-256.tif');
  for (const dir of ['staff', 'terms']) {
    fs.mkdirSync(path.join(root, dir));
    fs.copyFileSync(image, path.join(root, dir, 'retina.tif'));
  }
  // A sha512-crypt hash from openssl: libcrypt checks it like yescrypt's or bcrypt's.
  const hash = execFileSync('openssl', ['passwd', '-6', '-salt', 'e2esalt1', 'open sesame'])
    .toString().trim();
  fs.writeFileSync(path.join(root, 'users'), 'alice:' + hash + '\n');
  fs.writeFileSync(path.join(root, 'auth.ini'),
                   '[auth]\nsecret = ' + SECRET + '\nusers = ' + path.join(root, 'users') + '\n' +
                   '[access staff]\nmatch = staff/\nprofile = login\n' +
                   '[access terms]\nmatch = terms/\nprofile = clickthrough\ndegraded-size = 200\n');
  return root;
}

function startTessera(root) {
  return new Promise((resolve, reject) => {
    const proc = spawn(env('TESSERA_BIN'), ['--root', root, '--listen', '127.0.0.1:0', '--config',
                                            path.join(root, 'auth.ini')],
                       { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => reject(new Error('tessera did not start: ' + out)), 15000);
    proc.stdout.on('data', (chunk) => {
      out += chunk;
      const m = /tessera: listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ port: Number(m[1]), proc: proc });
      }
    });
    proc.stderr.on('data', (chunk) => process.stderr.write(chunk));
    proc.on('exit', (code) => reject(new Error('tessera exited with ' + code + ': ' + out)));
  });
}

// The viewer's origin: an empty page, the client's code runs in it through evaluate().
function startViewer() {
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end('<!DOCTYPE html><html><body><p>viewer</p></body></html>');
    });
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

async function fetchJson(page, url, token) {
  return page.evaluate(async ([u, t]) => {
    const r = await fetch(u, t ? { headers: { Authorization: 'Bearer ' + t } } : {});
    return { status: r.status, json: await r.json() };
  }, [url, token]);
}

// The token service in a hidden iframe, as Auth 2.0 section 4.2 describes.
async function getToken(page, tokenService, origin) {
  return page.evaluate(([svc, o]) => new Promise((resolve, reject) => {
    const id = 'm' + Math.random().toString(16).slice(2);
    const timer = setTimeout(() => reject(new Error('no message from the token service')), 10000);
    window.addEventListener('message', function receive(e) {
      if (!e.data || e.data.messageId !== id) {
        return;
      }
      clearTimeout(timer);
      window.removeEventListener('message', receive);
      resolve(e.data);
    });
    const frame = document.createElement('iframe');
    frame.style.display = 'none';
    frame.src = svc + '?messageId=' + id + '&origin=' + encodeURIComponent(o);
    document.body.appendChild(frame);
  }), [tokenService, origin]);
}

// Width of an image as an <img> loads it, in a fresh page (no memory cache from before), or -1.
async function imageWidth(context, viewer, url) {
  const page = await context.newPage();
  try {
    await page.goto(viewer);
    return await page.evaluate((u) => new Promise((resolve) => {
      const img = new Image();
      img.onload = () => resolve(img.naturalWidth);
      img.onerror = () => resolve(-1);
      img.src = u;
    }), url);
  } finally {
    await page.close();
  }
}

// Opens the access service as a client must (a new window, with origin) and lets act() work in
// it; resolves when the window has closed itself.
async function visitAccess(context, page, accessId, origin, act) {
  const [popup] = await Promise.all([
    context.waitForEvent('page'),
    page.evaluate(([u, o]) => { window.open(u + '?origin=' + encodeURIComponent(o)); },
                  [accessId, origin]),
  ]);
  await popup.waitForLoadState();
  const closed = popup.waitForEvent('close', { timeout: 10000 });
  await act(popup);
  await closed;
}

function services(info) {
  const probe = info.service.find((s) => s.type === 'AuthProbeService2');
  const access = probe.service[0];
  const token = access.service.find((s) => s.type === 'AuthAccessTokenService2');
  const logout = access.service.find((s) => s.type === 'AuthLogoutService2');
  return { probe: probe.id, access: access, token: token.id, logout: logout.id };
}

async function body(context, tessera, viewer) {
  const page = await context.newPage();
  await page.goto(viewer);
  const origin = new URL(viewer).origin;

  // Login: refused until the user signs in.
  const staff = tessera + '/iiif/3/staff%2Fretina.tif';
  let r = await fetchJson(page, staff + '/info.json');
  assert(r.status === 401, 'staff info.json: ' + r.status);
  const full = r.json.width;
  let s = services(r.json);
  assert(s.access.profile === 'active', 'profile ' + s.access.profile);
  r = await fetchJson(page, s.probe);
  assert(r.json.status === 401, 'probe before login: ' + r.json.status);
  assert(await imageWidth(context, viewer, staff + '/full/max/0/default.jpg') === -1,
         'the staff image loaded before login');
  await visitAccess(context, page, s.access.id, origin, async (w) => {
    await w.fill('input[name=user]', 'alice');
    await w.fill('input[name=password]', 'open sesame');
    await w.click('button[type=submit]');
  });
  let msg = await getToken(page, s.token, origin);
  assert(msg.type === 'AuthAccessToken2', 'token message: ' + JSON.stringify(msg));
  r = await fetchJson(page, s.probe, msg.accessToken);
  assert(r.json.status === 200, 'probe after login: ' + r.json.status);
  const w = await imageWidth(context, viewer, staff + '/full/max/0/default.jpg');
  assert(w === full, 'staff image after login: ' + w + ', want ' + full);
  const tile = await imageWidth(context, viewer, staff + '/0,0,256,256/256,/0/default.jpg');
  assert(tile === 256, 'a tile after login: ' + tile);

  // Click-through: the degraded image first, the full one after accepting, again after logout.
  const terms = tessera + '/iiif/3/terms%2Fretina.tif';
  r = await fetchJson(page, terms + '/info.json');
  assert(r.status === 200 && r.json.width <= 200, 'degraded info.json: ' + r.status + ' ' +
         r.json.width);
  s = services(r.json);
  r = await fetchJson(page, s.probe);
  assert(r.json.status === 401 && r.json.substitute.length === 1, 'terms probe: ' +
         JSON.stringify(r.json));
  let tw = await imageWidth(context, viewer, terms + '/full/max/0/default.jpg');
  assert(tw > 0 && tw <= 200, 'degraded image width ' + tw);
  await visitAccess(context, page, s.access.id, origin, (win) => win.click('button[type=submit]'));
  msg = await getToken(page, s.token, origin);
  r = await fetchJson(page, s.probe, msg.accessToken);
  assert(r.json.status === 200, 'terms probe after accepting: ' + r.json.status);
  tw = await imageWidth(context, viewer, terms + '/full/max/0/default.jpg');
  assert(tw === full, 'terms image after accepting: ' + tw);
  const out = await context.newPage();
  await out.goto(s.logout);
  await out.close();
  tw = await imageWidth(context, viewer, terms + '/full/max/0/default.jpg');
  assert(tw > 0 && tw <= 200, 'after logout, the degraded image again: ' + tw);
  msg = await getToken(page, s.token, origin);
  assert(msg.type === 'AuthAccessTokenError2' && msg.profile === 'missingAspect',
         'token after logout: ' + JSON.stringify(msg));
}

async function main() {
  const pw = playwright();
  const timer = setTimeout(() => {
    console.error('auth: FAILED: still running after 120 s');
    process.exit(1);
  }, 120000);
  let root = null;
  let tessera = null;
  let viewer = null;
  let browser = null;
  let failed = false;
  try {
    root = makeRoot();
    tessera = await startTessera(root);
    viewer = await startViewer();
    browser = await launch(pw);
    // Two ports of one host: two origins, one site (SameSite=Lax cookies over plain http).
    await body(browser.context, 'http://localhost:' + tessera.port,
               'http://localhost:' + viewer.address().port + '/');
    console.log('1 passed, 0 failed');
  } catch (e) {
    failed = true;
    console.error('auth: FAILED: ' + (e && e.stack ? e.stack : e));
    console.log('0 passed, 1 failed');
  } finally {
    if (browser) {
      await browser.context.close().catch(() => {});
      fs.rmSync(browser.profile, { recursive: true, force: true });
    }
    if (viewer) {
      viewer.close();
    }
    if (tessera) {
      tessera.proc.removeAllListeners('exit');
      tessera.proc.kill('SIGTERM');
    }
    if (root) {
      fs.rmSync(root, { recursive: true, force: true });
    }
    clearTimeout(timer);
  }
  process.exit(failed ? 1 : 0);
}

main();
