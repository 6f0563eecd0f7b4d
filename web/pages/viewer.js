// The deep-zoom viewer: OpenSeadragon on the image's IIIF 3.0 info.json, plus view tools, a
// panel that can be put away, and a link (the URL fragment) that reopens the current view.
'use strict';

(function () {
  const rawId = location.pathname.replace(/^\/viewer\//, '').replace(/\/+$/, '');
  const id = decodeURIComponent(rawId);
  const enc = encodeURIComponent(id);
  const serviceUrl = location.origin + '/iiif/3/' + enc;
  const infoUrl = serviceUrl + '/info.json';
  const manifestUrl = location.origin + '/manifest/' + enc;
  const $ = (sel) => document.getElementById(sel);
  const PANEL_KEY = 'tessera.panel';
  let info = null;

  const slash = id.lastIndexOf('/');
  const name = id.slice(slash + 1);
  const folder = slash > 0 ? id.slice(0, slash) : '';
  document.title = name + ' · Tessera';
  showTitle(name);
  if (folder) {
    $('back').href = '/browse/' + folder.split('/').map(encodeURIComponent).join('/');
    $('back').textContent = '\u2190 ' + folder;
  }
  $('manifest-link').href = manifestUrl;
  $('info-link').href = infoUrl;
  $('mirador-link').href = '/mirador?manifest=' + encodeURIComponent(manifestUrl);

  // File names rarely have spaces: offer line breaks after separators only, so no word is cut
  // in two; a single part too long for the panel ends in an ellipsis (the whole name stays in
  // the tooltip and the page title).
  function showTitle(text) {
    const h1 = $('title');
    h1.textContent = '';
    h1.title = text;
    const parts = text.match(/[^ _\-.]+[_\-.]*| +|[_\-.]+/g) || [text];
    parts.forEach(function (part, i) {
      if (/^ +$/.test(part)) {
        h1.append(' ');
        return;
      }
      if (i > 0) {
        h1.append(document.createElement('wbr'));
      }
      const span = document.createElement('span');
      span.className = 'word';
      span.textContent = part;
      h1.append(span);
    });
  }

  // The panel: hidden or shown as the person last left it (on this browser).
  function setPanel(shown) {
    document.body.classList.toggle('panel-hidden', !shown);
    $('panel').hidden = !shown;
    $('panel-toggle').setAttribute('aria-expanded', String(shown));
    $('panel-toggle').textContent = shown ? 'Hide info' : 'Show info';
  }
  function storedPanel() {
    try {
      return localStorage.getItem(PANEL_KEY) !== 'hidden';
    } catch (e) {
      return true; // storage blocked: start shown
    }
  }
  setPanel(storedPanel());
  $('panel-toggle').addEventListener('click', function () {
    const shown = document.body.classList.contains('panel-hidden');
    setPanel(shown);
    try {
      localStorage.setItem(PANEL_KEY, shown ? 'shown' : 'hidden');
    } catch (e) {
      // not remembered, still toggled
    }
  });

  function fail(message) {
    document.body.dataset.state = 'error';
    $('error').hidden = false;
    $('error').textContent = message;
    $('image-error-reason').textContent = message;
    $('image-error').hidden = false;
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
      document.body.dataset.state = item.getFullyLoaded() ? 'drawn' : 'loading';
    };
    item.addHandler('fully-loaded-change', done);
    restoreView();
    done();
    updateViewUrl();
    showInfo();
  });
  // OpenSeadragon's own message says little; the server's one-line reason says what is wrong.
  viewer.addHandler('open-failed', function (e) {
    fetch(infoUrl, { headers: { Accept: 'text/plain' } })
      .then((r) => (r.ok ? '' : r.text()))
      .then((text) => text.replace(/^\d+ [^:]*: /, '').trim())
      .catch(() => '')
      .then(function (reason) {
        fail(reason || ('Cannot open ' + id + ': ' + (e.message || 'unknown error')));
      });
  });
  let failedTiles = 0;
  viewer.addHandler('tile-load-failed', function () {
    failedTiles++;
    $('tile-warning').hidden = false;
    $('tile-warning').textContent = failedTiles === 1 ? 'One part of the image could not be read.'
      : failedTiles + ' parts of the image could not be read.';
  });
  viewer.addHandler('animation-finish', updateViewUrl);
  viewer.addHandler('rotate', updateViewUrl);
  viewer.addHandler('flip', updateViewUrl);
  window.addEventListener('resize', updateViewUrl);
  window.addEventListener('hashchange', function () {
    if (location.hash.slice(1) !== currentHash) {
      restoreView();
    }
  });

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

  // The view in the fragment: the centre in image pixels (the same on every screen), the zoom
  // as OpenSeadragon counts it (1 = the image's width fills the viewer's width), rotation in
  // degrees and the mirror. E.g. #x=2822&y=2116&zoom=2.25&rotation=90&mirror=1
  let currentHash = '';
  let restored = false;

  function viewHash() {
    const item = viewer.world.getItemAt(0);
    const vp = viewer.viewport;
    const c = item.viewportToImageCoordinates(vp.getCenter(true));
    const parts = ['x=' + Math.round(c.x), 'y=' + Math.round(c.y),
                   'zoom=' + Number(vp.getZoom(true).toPrecision(5)), 'rotation=' + rotation()];
    if (vp.getFlip()) {
      parts.push('mirror=1');
    }
    return parts.join('&');
  }

  function parseHash() {
    const p = new URLSearchParams(location.hash.slice(1));
    const x = Number(p.get('x'));
    const y = Number(p.get('y'));
    const zoom = Number(p.get('zoom'));
    const r = Number(p.get('rotation') || 0);
    if (!p.has('x') || !p.has('y') || !p.has('zoom') || !isFinite(x) || !isFinite(y) ||
        !(zoom > 0) || !isFinite(zoom) || !isFinite(r)) {
      return null;
    }
    return { x: x, y: y, zoom: zoom, rotation: ((Math.round(r / 90) * 90) % 360 + 360) % 360,
             mirror: p.get('mirror') === '1' };
  }

  function restoreView() {
    const item = viewer.world.getItemAt(0);
    const view = parseHash();
    if (item && view) {
      const vp = viewer.viewport;
      vp.setFlip(view.mirror);
      $('mirror').setAttribute('aria-pressed', String(view.mirror));
      vp.setRotation(view.rotation, true);
      vp.zoomTo(view.zoom, null, true);
      vp.panTo(item.imageToViewportCoordinates(view.x, view.y), true);
    }
    restored = true;
  }

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

  // Keeps the address bar (without adding history entries), the link field and the IIIF link
  // on the view shown.
  function updateViewUrl() {
    if (!restored || !viewer.world.getItemAt(0)) {
      return;
    }
    currentHash = viewHash();
    history.replaceState(history.state, '', '#' + currentHash);
    $('view-link').value = location.href;
    $('view-image').href = viewUrl();
  }

  $('copy').addEventListener('click', function () {
    updateViewUrl();
    const url = location.href;
    $('view-link').value = url;
    const shown = () => { $('copy-status').textContent = 'Copied.'; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(url).then(shown, selectForCopy);
    } else {
      selectForCopy();
    }
  });

  function selectForCopy() {
    $('view-link').select();
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
