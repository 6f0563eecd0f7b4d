// The viewer on a phone (390 x 844) and on a desktop in headless Chromium: the picture stays
// visible beside or above the panel, the panel hides (and stays hidden on reload), the title
// breaks between words only, the link in the address bar reopens the same view, unreadable
// files and unknown pages say so in a page of ours with a way back.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { run, watch, pictureStats, assert, env } = require('./harness.js');

const LONG_NAME = 'Portolan_chart_of_the_Mediterranean_Sea-by_Angelino_Dulcert.1339.tif';
const IMAGE_ID = 'eye/' + LONG_NAME;
const SIZES = [
  { name: 'phone', width: 390, height: 844 },
  { name: 'desktop', width: 1280, height: 800 },
];

function viewerUrl(base, id) {
  return base + '/viewer/' + encodeURIComponent(id);
}

async function waitDrawn(page) {
  await page.waitForSelector('body[data-state="drawn"]', { timeout: 30000 });
}

async function box(page, selector) {
  const b = await page.locator(selector).boundingBox();
  assert(b, selector + ' is not laid out');
  return b;
}

function overlap(a, b) {
  const w = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
  const h = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
  return w > 0 && h > 0 ? w * h : 0;
}

// The picture inside the viewer's area has content (not one flat colour).
async function pictureShown(context, page, what) {
  const b = await box(page, '#osd');
  const shot = await page.screenshot({ clip: { x: b.x, y: b.y, width: b.width,
                                               height: Math.min(b.height, 500) } });
  const stats = await pictureStats(context, shot);
  assert(stats.stddev > 5 && stats.colours > 50,
         what + ': the image area is blank ' + JSON.stringify(stats));
}

async function view(page) {
  return page.evaluate(() => {
    const vp = window.tessera.viewer.viewport;
    const c = vp.getCenter(true);
    return { x: c.x, y: c.y, zoom: vp.getZoom(true), rotation: vp.getRotation(true),
             flip: vp.getFlip() };
  });
}

async function layout(context, base, size) {
  const page = await context.newPage();
  await page.setViewportSize({ width: size.width, height: size.height });
  const seen = watch(page, base);
  const url = viewerUrl(base, IMAGE_ID);
  await page.goto(url, { waitUntil: 'load' });
  await page.evaluate(() => localStorage.removeItem('tessera.panel'));
  await page.reload({ waitUntil: 'load' });
  await waitDrawn(page);

  // Side by side (desktop) or one above the other (phone), never on top of each other.
  const osd = await box(page, '#osd');
  const panel = await box(page, '#panel');
  assert(await page.isVisible('#panel'), size.name + ': the panel is not shown at first');
  assert(overlap(osd, panel) === 0, size.name + ': the panel covers the image ' +
         JSON.stringify({ osd: osd, panel: panel }));
  assert(osd.width >= size.width * 0.6 && osd.height >= size.height * 0.5,
         size.name + ': the image area is too small ' + JSON.stringify(osd));
  assert(panel.x + panel.width <= size.width + 1 && panel.y + panel.height <= size.height + 1,
         size.name + ': the panel runs off the screen ' + JSON.stringify(panel));
  if (size.name === 'phone') {
    assert(panel.y >= osd.y + osd.height - 1, 'phone: the panel is not below the image');
  }
  await pictureShown(context, page, size.name);
  const shot = path.join(env('TESSERA_E2E_OUT'), 'viewer-' + size.name + '.png');
  await page.screenshot({ path: shot });

  // The title breaks between the parts of the name, none of them in two, and stays inside.
  const title = await page.evaluate(() => {
    const h1 = document.getElementById('title');
    // Every character's line (its box top); a new line may only start after a separator.
    const walker = document.createTreeWalker(h1, NodeFilter.SHOW_TEXT);
    const chars = [];
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      for (let i = 0; i < n.length; i++) {
        const r = document.createRange();
        r.setStart(n, i);
        r.setEnd(n, i + 1);
        const rect = r.getBoundingClientRect();
        chars.push({ c: n.data[i], top: Math.round(rect.top), w: rect.width });
      }
    }
    const breaks = [];
    for (let i = 1; i < chars.length; i++) {
      if (chars[i].top > chars[i - 1].top + 2) {
        breaks.push(chars[i - 1].c + '|' + chars[i].c);
      }
    }
    const hidden = [...h1.querySelectorAll('.word')].filter((w) => w.scrollWidth > w.clientWidth);
    return { text: h1.textContent, overflow: h1.scrollWidth - h1.clientWidth, breaks: breaks,
             lines: breaks.length + 1, split: breaks.filter((b) => !/^[ _\-./]\|/.test(b))
               .concat(hidden.map((w) => 'cut: ' + w.textContent)) };
  });
  assert(title.text === LONG_NAME, size.name + ': the title is "' + title.text + '"');
  assert(title.split.length === 0, size.name + ': words broken across lines: ' + title.split);
  assert(title.overflow <= 0, size.name + ': the title overflows the panel by ' + title.overflow);
  if (size.name === 'phone') {
    assert(title.lines > 1, 'phone: the long title did not wrap');
  }

  // Hidden, the panel leaves the whole window to the image; a reload remembers it.
  await page.click('#panel-toggle');
  assert(!(await page.isVisible('#panel')), size.name + ': the panel did not hide');
  await page.waitForFunction((h) => document.getElementById('osd').clientHeight >= h - 1 &&
                                    document.getElementById('osd').clientWidth >= innerWidth - 1,
                             size.height, { timeout: 5000 });
  await page.reload({ waitUntil: 'load' });
  await waitDrawn(page);
  assert(!(await page.isVisible('#panel')), size.name + ': the hidden panel came back on reload');
  assert(await page.getAttribute('#panel-toggle', 'aria-expanded') === 'false',
         size.name + ': the toggle does not say the panel is hidden');
  await pictureShown(context, page, size.name + ' without the panel');
  await page.click('#panel-toggle');
  assert(await page.isVisible('#panel'), size.name + ': the panel did not come back');

  // Zoom, rotate, mirror and drag as a person would; the address then names this view.
  const start = await view(page);
  await page.click('#zoom-in');
  await page.click('#zoom-in');
  await page.click('#rotate-right');
  await page.click('#mirror');
  const o = await box(page, '#osd');
  await page.mouse.move(o.x + o.width / 2, o.y + o.height / 2);
  await page.mouse.down();
  await page.mouse.move(o.x + o.width / 2 - 60, o.y + o.height / 2 - 40, { steps: 8 });
  await page.mouse.up();
  await page.waitForFunction(() => /rotation=90/.test(location.hash) &&
                                   /mirror=1/.test(location.hash), null, { timeout: 10000 });
  await page.waitForTimeout(2000); // the drag's glide ends; the address follows it
  const before = await view(page);
  const link = page.url();
  const shownLink = await page.inputValue('#view-link');
  assert(shownLink === link, size.name + ': the link field says ' + shownLink + ', not ' + link);
  // The copy button puts the same link on the clipboard.
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  await page.click('#copy');
  await page.waitForFunction(() => document.getElementById('copy-status').textContent !== '',
                             null, { timeout: 5000 });
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  assert(copied === link, size.name + ': Copy link copied ' + copied + ', not ' + link);
  assert(/#x=\d+&y=\d+&zoom=[\d.]+&rotation=90&mirror=1$/.test(link),
         size.name + ': the address does not name the view: ' + link);
  assert(before.zoom > start.zoom * 1.2,
         size.name + ': zooming in did not zoom: ' + start.zoom + ' -> ' + before.zoom);

  // The same link in a new page shows the same view.
  const again = await context.newPage();
  await again.setViewportSize({ width: size.width, height: size.height });
  await again.goto(link, { waitUntil: 'load' });
  await again.waitForFunction(() => window.tessera && window.tessera.viewer.world.getItemCount(),
                              null, { timeout: 30000 });
  await waitDrawn(again);
  const after = await view(again);
  const near = (a, b, tol) => Math.abs(a - b) <= tol;
  assert(near(after.x, before.x, 1e-3) && near(after.y, before.y, 1e-3) &&
         near(after.zoom / before.zoom, 1, 1e-3) && after.rotation === before.rotation &&
         after.flip === before.flip,
         size.name + ': the link restored ' + JSON.stringify(after) + ', not ' +
         JSON.stringify(before));
  await pictureShown(context, again, size.name + ' restored view');
  await again.close();

  assert(seen.foreign.length === 0, 'requests to other origins: ' + seen.foreign.join(', '));
  assert(seen.errors.length === 0, size.name + ': errors in the page:\n  ' + seen.errors.join('\n  '));
  await page.close();
  console.log(size.name + ': ok, restored ' + JSON.stringify(after));
}

// Unknown pages and images answer with a styled page of ours and a way back; scripts keep text.
async function errorPages(context, base) {
  const page = await context.newPage();
  for (const [where, status] of [['/viewer/eye%2Fmissing.tif', 404], ['/no/such/page', 404],
                                 ['/browse/..%2F..', 403]]) {
    const res = await page.goto(base + where, { waitUntil: 'load' });
    assert(res.status() === status, where + ' answered ' + res.status() + ', not ' + status);
    assert(res.headers()['content-type'].startsWith('text/html'),
           where + ' is not an HTML page: ' + res.headers()['content-type']);
    const look = await page.evaluate(() => ({
      bg: getComputedStyle(document.body).backgroundColor,
      boxBg: getComputedStyle(document.querySelector('.error-box')).backgroundColor,
      code: document.querySelector('.error-box .code').textContent,
      reason: document.querySelector('.error-box .reason').textContent,
    }));
    assert(look.bg === 'rgb(21, 23, 26)' && look.boxBg === 'rgb(32, 35, 40)',
           where + ': the error page is not styled like the rest: ' + JSON.stringify(look));
    assert(look.code === String(status) && look.reason.length > 0,
           where + ': the page does not say what went wrong: ' + JSON.stringify(look));
  }
  await page.screenshot({ path: path.join(env('TESSERA_E2E_OUT'), 'error-page.png') });
  await page.click('a.home');
  await page.waitForURL(base + '/');
  assert(await page.isVisible('ul.grid'), 'the link back does not lead to the images');
  const plain = await fetch(base + '/no/such/page', { headers: { Accept: '*/*' } });
  const text = await plain.text();
  assert(plain.status === 404 && plain.headers.get('content-type').startsWith('text/plain') &&
         /^404 Not Found: /.test(text), 'a non-browser client got ' +
         plain.headers.get('content-type') + ': ' + text.slice(0, 80));
  await page.close();
}

// A file the server cannot read shows a note, not the broken-image icon, in both places.
async function unreadable(context, base) {
  const page = await context.newPage();
  await page.goto(base + '/browse/eye', { waitUntil: 'load' });
  await page.waitForSelector('li.unreadable .thumb-error small', { timeout: 15000 });
  const items = await page.$$eval('li.image', (lis) => lis.map((li) => ({
    name: li.querySelector('.name').textContent,
    alt: li.querySelector('img') ? li.querySelector('img').alt : null,
    broken: [...li.querySelectorAll('img')].some((i) => i.complete && i.naturalWidth === 0),
    note: li.querySelector('.thumb-error') ? li.querySelector('.thumb-error').textContent : null,
  })));
  const bad = items.find((i) => i.name === 'broken.tif');
  assert(bad && bad.note && /Cannot show this image/.test(bad.note) && !bad.broken,
         'the unreadable thumbnail is not explained: ' + JSON.stringify(bad));
  for (const i of items.filter((x) => x.name !== 'broken.tif')) {
    assert(i.alt === i.name && !i.broken, 'thumbnail without its name as alt text: ' +
           JSON.stringify(i));
  }
  await page.goto(viewerUrl(base, 'eye/broken.tif'), { waitUntil: 'load' });
  await page.waitForSelector('#image-error:not([hidden])', { timeout: 15000 });
  const reason = await page.textContent('#image-error-reason');
  assert(/broken\.tif/.test(reason), 'the viewer does not say which file failed: ' + reason);
  await page.close();
}

// The folder page fits a phone: no sideways scrolling, thumbnails side by side.
async function folderOnPhone(context, base) {
  const page = await context.newPage();
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(base + '/browse/eye', { waitUntil: 'load' });
  const fit = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    tops: [...document.querySelectorAll('.grid li')].map((li) => li.getBoundingClientRect().top),
  }));
  assert(fit.scroll <= 390, 'the folder page scrolls sideways on a phone: ' + fit.scroll + ' px');
  assert(fit.tops.length >= 2 && fit.tops[0] === fit.tops[1],
         'the folder page shows one thumbnail per row on a phone: ' + fit.tops);
  await page.screenshot({ path: path.join(env('TESSERA_E2E_OUT'), 'folder-phone.png') });
  await page.close();
}

run('layout', 140000, async ({ base, context, root }) => {
  fs.copyFileSync(path.join(root, 'eye', 'retina.tif'), path.join(root, 'eye', LONG_NAME));
  fs.writeFileSync(path.join(root, 'eye', 'broken.tif'), 'not a TIFF at all\n');
  for (const size of SIZES) {
    await layout(context, base, size);
  }
  await errorPages(context, base);
  await unreadable(context, base);
  await folderOnPhone(context, base);
});
