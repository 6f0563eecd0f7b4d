// Folder pages: a thumbnail the server cannot make becomes a readable note instead of the
// browser's broken-image icon. Loaded in <head>, before any thumbnail, so none fails unseen.
'use strict';

(function () {
  function broken(img) {
    const item = img.closest('li.image');
    if (!item || item.classList.contains('unreadable')) {
      return;
    }
    item.classList.add('unreadable');
    const note = document.createElement('span');
    note.className = 'thumb-error';
    note.setAttribute('role', 'img');
    note.setAttribute('aria-label', img.alt + ': cannot be shown');
    note.textContent = 'Cannot show this image';
    img.replaceWith(note);
    // The server's one-line reason (plain text for scripts) says what is wrong with the file.
    fetch(img.src, { headers: { Accept: 'text/plain' } })
      .then((r) => (r.ok ? '' : r.text()))
      .then(function (text) {
        const reason = text.replace(/^\d+ [^:]*: /, '').trim();
        if (reason) {
          note.title = reason;
          const detail = document.createElement('small');
          detail.textContent = reason;
          note.append(detail);
        }
      })
      .catch(function () {});
  }

  // Image errors do not bubble; a listener on the capture phase sees them all.
  document.addEventListener('error', function (e) {
    if (e.target instanceof HTMLImageElement) {
      broken(e.target);
    }
  }, true);
})();
