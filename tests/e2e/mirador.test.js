// End to end in headless Chromium: Mirador (its UMD build, served by Tessera) opens a generated
// manifest and draws the image through the Image API service the manifest links; what a
// curator wrote in the image's sidecar file is what Mirador's information panel shows.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { run, watch, pictureStats, assert, env } = require('./harness.js');

const IMAGE_ID = 'eye/retina.tif';

// The curator's sidecar beside the image: label, summary, metadata and statement.
const SIDECAR = {
  label: { en: ['Fundus of a test eye'] },
  summary: 'Photographed for the sidecar test.',
  metadata: [{ label: { en: ['Photographer'] }, value: { none: ['Mikael H\u00e4ggstr\u00f6m'] } }],
  requiredStatement: { label: { en: ['Attribution'] }, value: { en: ['Courtesy of the test library'] } },
};

run('mirador', 120000, async ({ base, context, root }) => {
  fs.writeFileSync(path.join(root, IMAGE_ID + '.json'), JSON.stringify(SIDECAR));
  const page = context.pages()[0] || await context.newPage();
  const seen = watch(page, base);
  const manifestUrl = base + '/manifest/' + encodeURIComponent(IMAGE_ID);
  const manifest = await (await fetch(manifestUrl)).json();
  assert(manifest.type === 'Manifest', 'no manifest at ' + manifestUrl);

  await page.goto(base + '/mirador?manifest=' + encodeURIComponent(manifestUrl));

  // The manifest carries the sidecar's fields...
  assert(manifest.label.en && manifest.label.en[0] === SIDECAR.label.en[0],
         'the manifest does not carry the sidecar\'s label: ' + JSON.stringify(manifest.label));
  // ...and Mirador shows its label as the window title...
  const label = manifest.label.en[0];
  await page.getByText(label, { exact: true }).first().waitFor({ timeout: 30000 });
  // ...and its OpenSeadragon asks the image service for tiles and draws them.
  const service = manifest.items[0].items[0].items[0].body.service[0].id;
  await page.waitForResponse((r) => r.url().startsWith(service + '/') && r.url().endsWith('.jpg') &&
                                    r.status() === 200, { timeout: 30000 });
  await page.waitForSelector('.openseadragon-canvas canvas', { timeout: 30000 });
  await page.waitForLoadState('networkidle', { timeout: 30000 });
  await page.waitForTimeout(1000);

  const tiles = seen.responses.filter((r) => r.url.startsWith(service + '/') &&
                                             r.url.endsWith('/default.jpg'));
  assert(tiles.length > 0, 'Mirador fetched no image tiles');
  const bad = tiles.filter((t) => t.status !== 200);
  assert(bad.length === 0, 'tile requests failed: ' + bad.map((t) => t.status + ' ' + t.url));
  assert(seen.responses.some((r) => r.url === service + '/info.json' && r.status === 200),
         'Mirador did not read the service\'s info.json');

  // The canvas Mirador drew holds the picture: check the OpenSeadragon area of a screenshot.
  const box = await page.locator('.openseadragon-canvas').first().boundingBox();
  assert(box && box.width > 100 && box.height > 100, 'the image canvas is not on screen');
  const shot = await page.screenshot({ path: path.join(env('TESSERA_E2E_OUT'), 'mirador.png'),
                                       clip: box });
  const stats = await pictureStats(context, shot);
  console.log('mirador.png: ' + JSON.stringify(stats));
  assert(stats.stddev > 20 && stats.colours > 300, 'Mirador\'s image area is blank');

  // The information panel (open by default) shows what the curator wrote.
  const panel = page.locator('aside').filter({ hasText: 'About this item' }).first();
  await panel.waitFor({ timeout: 30000 });
  // (Mirador shows the requiredStatement in its separate Rights panel, not here.)
  for (const text of [SIDECAR.label.en[0], SIDECAR.summary, 'Photographer',
                      SIDECAR.metadata[0].value.none[0]]) {
    await panel.getByText(text, { exact: true }).first().waitFor({ timeout: 10000 })
      .catch(() => { throw new Error('Mirador\'s information panel does not show "' + text + '"'); });
  }
  await panel.screenshot({ path: path.join(env('TESSERA_E2E_OUT'), 'mirador-info.png') });

  assert(seen.foreign.length === 0, 'requests to other origins: ' + seen.foreign.join(', '));
  assert(seen.errors.length === 0, 'errors in the page:\n  ' + seen.errors.join('\n  '));
  console.log('mirador: drew ' + label + ' from ' + tiles.length + ' tiles');
});
