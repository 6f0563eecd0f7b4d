// End to end in headless Chromium: browse to an image, open the viewer, zoom, check the tiles.
'use strict';

const path = require('node:path');
const { run, watch, pictureStats, assert, env } = require('./harness.js');

const IMAGE_ID = 'eye/retina.tif';

// One tile request against info.json: on the grid of one of the advertised scale factors, with
// the size of that region at that factor (the Image API rounds up; OpenSeadragon takes level
// sizes from info.json's "sizes", which may round down: both are within one pixel).
// Returns what is wrong, or null.
function offGrid(url, info) {
  const m = /\/iiif\/3\/[^/]+\/([^/]+)\/([^/]+)\/0\/default\.jpg$/.exec(new URL(url).pathname);
  if (!m) {
    return 'not a tile URL';
  }
  const W = info.width;
  const H = info.height;
  const tile = info.tiles[0];
  const tw = tile.width;
  const th = tile.height || tile.width;
  const size = m[2] === 'max' ? ['max', '', ''] : /^(\d+),(\d*)$/.exec(m[2]);
  if (!size) {
    return 'size ' + m[2] + ' is not max, w, or w,h';
  }
  let x = 0;
  let y = 0;
  let w = W;
  let h = H;
  if (m[1] !== 'full') {
    const r = /^(\d+),(\d+),(\d+),(\d+)$/.exec(m[1]);
    if (!r) {
      return 'region ' + m[1] + ' is not x,y,w,h';
    }
    [x, y, w, h] = r.slice(1).map(Number);
  }
  for (const s of tile.scaleFactors) {
    const onGrid = x % (tw * s) === 0 && y % (th * s) === 0 &&
                   w === Math.min(tw * s, W - x) && h === Math.min(th * s, H - y);
    const near = (got, want) => got === '' || Math.abs(Number(got) - want) < 1;
    const sized = size[0] === 'max' ? s === 1 : near(size[1], w / s) && near(size[2], h / s);
    if (onGrid && sized) {
      return null;
    }
  }
  return 'region ' + m[1] + ' size ' + m[2] + ' fits no scale factor of ' +
         JSON.stringify(tile.scaleFactors) + ' with ' + tw + 'x' + th + ' tiles';
}

function tileResponses(seen) {
  return seen.responses.filter((r) => /\/iiif\/3\/.*\/default\.jpg$/.test(new URL(r.url).pathname) &&
                                      !/\/full\/!200,200\//.test(r.url));
}

// Saves a screenshot in the test's output folder and fails if the image area (left of the
// panel, above the navigator) is one flat colour or nearly so: black, grey or white.
async function notBlank(context, page, name) {
  const shot = await page.screenshot({ path: path.join(env('TESSERA_E2E_OUT'), name) });
  const area = await page.screenshot({ clip: { x: 0, y: 0, width: 900, height: 600 } });
  const stats = await pictureStats(context, area);
  console.log(name + ': image area ' + JSON.stringify(stats));
  assert(shot.length > 0 && stats.stddev > 5 && stats.colours > 50,
         'the image area of ' + name + ' is blank');
}

async function waitDrawn(page) {
  await page.waitForSelector('body[data-state="drawn"]', { timeout: 30000 });
  await page.waitForLoadState('networkidle', { timeout: 30000 });
  await page.waitForSelector('body[data-state="drawn"]', { timeout: 30000 });
}

run('viewer', 120000, async ({ base, context }) => {
  const page = context.pages()[0] || await context.newPage();
  const seen = watch(page, base);
  const info = await (await fetch(base + '/iiif/3/' + encodeURIComponent(IMAGE_ID) +
                                  '/info.json')).json();

  // The front page lists the folder; the folder page links to the viewer.
  await page.goto(base + '/', { waitUntil: 'load' });
  await page.click('a[href="/browse/eye"]');
  await page.waitForURL(base + '/browse/eye');
  await page.waitForFunction(() => [...document.querySelectorAll('li.image img')]
    .every((i) => i.complete), null, { timeout: 15000 });
  const thumbs = await page.$$eval('li.image img', (imgs) => imgs.map((i) => i.naturalWidth));
  assert(thumbs.length === 1 && thumbs[0] > 0, 'folder page thumbnail not loaded: ' + thumbs);
  await page.click('li.image a');
  await page.waitForURL(/\/viewer\//);
  assert(decodeURIComponent(new URL(page.url()).pathname) === '/viewer/' + IMAGE_ID,
         'followed the wrong link: ' + page.url());

  await waitDrawn(page);
  await notBlank(context, page, 'viewer.png');
  const before = tileResponses(seen).length;
  assert(before > 0, 'no tiles requested before zooming');

  // Zoom in three steps, as a person would with the + button.
  for (let i = 0; i < 3; i++) {
    await page.click('#zoom-in');
  }
  await page.waitForTimeout(1500);
  await waitDrawn(page);
  const tiles = tileResponses(seen);
  if (process.env.TESSERA_E2E_DEBUG) {
    console.log(before, tiles.map((t) => t.url).join('\n'));
    console.log(await page.evaluate(() => window.tessera.viewer.viewport.getZoom()));
  }
  assert(tiles.length > before, 'zooming in fetched no new tiles');

  const problems = [];
  for (const t of tiles) {
    if (t.status !== 200 || !t.type.startsWith('image/jpeg')) {
      problems.push(t.status + ' ' + t.type + ' ' + t.url);
    }
    const why = offGrid(t.url, info);
    if (why) {
      problems.push(why + ': ' + t.url);
    }
  }
  assert(problems.length === 0, 'bad tile requests:\n  ' + problems.join('\n  '));
  const zoomed = tiles.slice(before).map((t) => new URL(t.url).pathname.split('/')[5]);
  assert(zoomed.some((size) => !/^full$/.test(size)), 'no partial-region tiles after zooming');

  // The info panel shows what the server says about the image.
  const infoText = await page.textContent('#info');
  assert(infoText.includes(info.width + ' x ' + info.height + ' px'),
         'info panel lacks the dimensions: ' + infoText);
  assert(/Format\s*tiff/.test(infoText) && /Levels\s*\d+/.test(infoText),
         'info panel lacks format or levels: ' + infoText);
  const manifestHref = await page.getAttribute('#manifest-link', 'href');
  const manifest = await (await fetch(manifestHref)).json();
  assert(manifest.type === 'Manifest' && manifest.items[0].width === info.width,
         'manifest link does not lead to this image\'s manifest');

  await notBlank(context, page, 'viewer-zoomed.png');

  // The shared view is a IIIF URL the server answers, and follows rotation and mirroring.
  await page.click('#rotate-right');
  await page.click('#mirror');
  await page.waitForTimeout(1500);
  const link = await page.getAttribute('#view-image', 'href');
  const shared = /\/iiif\/3\/eye%2Fretina\.tif\/(\d+),(\d+),(\d+),(\d+)\/!(\d+),(\d+)\/!270\/default\.jpg$/
    .exec(link);
  assert(shared, 'copy-link is not a rotated, mirrored region URL: ' + link);
  const [x, y, w, h] = shared.slice(1, 5).map(Number);
  assert(x + w <= info.width && y + h <= info.height && w < info.width,
         'the shared region is not the zoomed-in view: ' + link);
  const answer = await fetch(link);
  assert(answer.status === 200 && answer.headers.get('content-type') === 'image/jpeg',
         'the shared link answers ' + answer.status);

  assert(seen.foreign.length === 0, 'requests to other origins: ' + seen.foreign.join(', '));
  const errors = seen.errors.concat(seen.console);
  assert(errors.length === 0, 'errors in the page:\n  ' + errors.join('\n  '));
  console.log('viewer: ' + tiles.length + ' tiles, all 200 and on the grid');
});
