// The deep-zoom viewer: OpenSeadragon on the image's IIIF 3.0 info.json, plus view tools.
'use strict';

(function () {
  const rawId = location.pathname.replace(/^\/viewer\//, '').replace(/\/+$/, '');
  const id = decodeURIComponent(rawId);
  const enc = encodeURIComponent(id);
  const serviceUrl = location.origin + '/iiif/3/' + enc;
  const infoUrl = serviceUrl + '/info.json';
  const manifestUrl = location.origin + '/manifest/' + enc;
  const $ = (sel) => document.getElementById(sel);
  let info = null;

  document.title = id + ' · Tessera';
  $('title').textContent = id;
  $('manifest-link').href = manifestUrl;
  $('info-link').href = infoUrl;
  $('mirador-link').href = '/mirador?manifest=' + encodeURIComponent(manifestUrl);

  function fail(message) {
    document.body.dataset.state = 'error';
    $('error').hidden = false;
    $('error').textContent = message;
  }

  const viewer = OpenSeadragon({
    element: $('osd'),
    prefixUrl: '/static/openseadragon/images/',
    tileSources: infoUrl,
    drawer: 'canvas',
    showNavigationControl: false,
    showNavigator: true,
    navigatorPosition: 'BOTTOM_LEFT',
    visibilityRatio: 0.5,
    maxZoomPixelRatio: 2,
    gestureSettingsMouse: { clickToZoom: false },
  });
  window.tessera = { viewer: viewer, id: id };

  viewer.addHandler('open', function () {
    const item = viewer.world.getItemAt(0);
    info = item.source;
    const done = function () {
      if (item.getFullyLoaded()) {
        document.body.dataset.state = 'drawn';
      } else {
        document.body.dataset.state = 'loading';
      }
    };
    item.addHandler('fully-loaded-change', done);
    done();
    updateViewUrl();
    showInfo();
  });
  viewer.addHandler('open-failed', function (e) {
    fail('Cannot open ' + id + ': ' + (e.message || 'unknown error'));
  });
  viewer.addHandler('animation-finish', updateViewUrl);
  viewer.addHandler('rotate', updateViewUrl);
  viewer.addHandler('flip', updateViewUrl);
  window.addEventListener('resize', updateViewUrl);

  function rotation() {
    const r = Math.round(viewer.viewport.getRotation() / 90) * 90;
    return ((r % 360) + 360) % 360;
  }

  $('zoom-in').addEventListener('click', () => viewer.viewport.zoomBy(1.5).applyConstraints());
  $('zoom-out').addEventListener('click', () => viewer.viewport.zoomBy(1 / 1.5).applyConstraints());
  $('home').addEventListener('click', () => viewer.viewport.goHome());
  $('rotate-left').addEventListener('click', () => viewer.viewport.setRotation(rotation() - 90));
  $('rotate-right').addEventListener('click', () => viewer.viewport.setRotation(rotation() + 90));
  $('mirror').addEventListener('click', function () {
    viewer.viewport.toggleFlip();
    this.setAttribute('aria-pressed', String(viewer.viewport.getFlip()));
  });

  // The visible part of the image as a IIIF Image API 3.0 URL. OpenSeadragon mirrors the
  // rotated picture on screen, while IIIF mirrors before rotating, so the angle changes sign.
  function viewUrl() {
    const item = viewer.world.getItemAt(0);
    if (!item) {
      return '';
    }
    const size = item.getContentSize();
    const box = item.viewportToImageRectangle(viewer.viewport.getBounds(true).getBoundingBox());
    const x0 = Math.max(0, Math.floor(box.x));
    const y0 = Math.max(0, Math.floor(box.y));
    const x1 = Math.min(size.x, Math.ceil(box.x + box.width));
    const y1 = Math.min(size.y, Math.ceil(box.y + box.height));
    let region = 'full';
    if (x1 > x0 && y1 > y0 && (x0 > 0 || y0 > 0 || x1 < size.x || y1 < size.y)) {
      region = x0 + ',' + y0 + ',' + (x1 - x0) + ',' + (y1 - y0);
    }
    const el = $('osd');
    const w = Math.max(1, Math.round(el.clientWidth));
    const h = Math.max(1, Math.round(el.clientHeight));
    const turned = rotation() % 180 !== 0;
    const fit = '!' + (turned ? h : w) + ',' + (turned ? w : h);
    const flip = viewer.viewport.getFlip();
    const angle = flip ? (360 - rotation()) % 360 : rotation();
    return serviceUrl + '/' + region + '/' + fit + '/' + (flip ? '!' : '') + angle + '/default.jpg';
  }

  function updateViewUrl() {
    $('view-url').value = viewUrl();
  }

  $('copy').addEventListener('click', function () {
    const url = viewUrl();
    $('view-url').value = url;
    const shown = () => { $('copy-status').textContent = 'Copied.'; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(url).then(shown, selectForCopy);
    } else {
      selectForCopy();
    }
  });

  function selectForCopy() {
    $('view-url').select();
    $('copy-status').textContent = 'Press Ctrl+C to copy the selected link.';
  }

  function addInfo(label, value) {
    const dt = document.createElement('dt');
    const dd = document.createElement('dd');
    dt.textContent = label;
    dd.textContent = value;
    $('info').append(dt, dd);
  }

  function firstValue(map) {
    const values = map && (map.none || map.en || Object.values(map)[0]);
    return values && values.length ? values[0] : '';
  }

  // Dimensions and tiles come from info.json; the source format and level count from the manifest.
  function showInfo() {
    fetch(manifestUrl, { headers: { Accept: 'application/ld+json' } })
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error('manifest: HTTP ' + r.status))))
      .then(function (manifest) {
        $('info').textContent = '';
        (manifest.metadata || []).forEach(function (entry) {
          const label = firstValue(entry.label);
          if (label !== 'Identifier') {
            addInfo(label, firstValue(entry.value));
          }
        });
        if (info && info.scale_factors) {
          addInfo('Zoom levels served', String(info.scale_factors.length));
        }
      })
      .catch(function (e) {
        addInfo('Dimensions', info ? info.width + ' x ' + info.height + ' px' : '?');
        addInfo('Note', e.message);
      });
  }
})();
