// Opens the manifest named by ?manifest= (default: the root collection) in Mirador.
'use strict';

(function () {
  const params = new URLSearchParams(location.search);
  const manifest = params.get('manifest');
  const collection = location.origin + '/collection';
  // Only this server's manifests: the page may fetch from its own origin alone.
  const own = manifest && new URL(manifest, location.href).origin === location.origin;
  const target = own ? new URL(manifest, location.href).href : collection;
  window.tesseraMirador = Mirador.viewer({
    id: 'mirador',
    windows: [{ manifestId: target }],
    catalog: [{ manifestId: target }, { manifestId: collection }],
    window: { allowClose: false, defaultSideBarPanel: 'info', sideBarOpenByDefault: true },
    workspaceControlPanel: { enabled: false },
  });
})();
