// hafront status page: re-renders the live part every second from /status/live
// (HTML the daemon renders and escapes, from the same snapshots as /v1/status).
// Loaded as a file ('self'), never inline: the CSP forbids inline script.
(function () {
  'use strict';
  var live = document.getElementById('live');
  var conn = document.getElementById('conn');
  if (!live || !window.fetch) { return; }
  var url = live.getAttribute('data-live');
  var PERIOD = 1000;
  var timer = null;
  var lastOk = Date.now();

  function schedule(ms) {
    clearTimeout(timer);
    timer = setTimeout(tick, ms);
  }

  function setConn(ok, text) {
    document.body.classList.toggle('stale', !ok);
    conn.textContent = text;
  }

  function tick() {
    if (document.hidden) { return; } // resumed by visibilitychange
    var ctl = window.AbortController ? new AbortController() : null;
    var guard = ctl ? setTimeout(function () { ctl.abort(); }, 3000) : null;
    fetch(url, { cache: 'no-store', credentials: 'same-origin', signal: ctl ? ctl.signal : undefined })
      .then(function (r) {
        if (!r.ok) { throw new Error('HTTP ' + r.status); }
        return r.text();
      })
      .then(function (html) {
        live.innerHTML = html;
        lastOk = Date.now();
        setConn(true, 'live, every 1 s');
      })
      .catch(function (e) {
        var ago = Math.round((Date.now() - lastOk) / 1000);
        setConn(false, 'not updating (' + e.message + '), last update ' + ago + ' s ago');
      })
      .then(function () {
        if (guard) { clearTimeout(guard); }
        schedule(PERIOD);
      });
  }

  document.addEventListener('visibilitychange', function () {
    if (!document.hidden) { schedule(0); }
  });
  setConn(true, 'live, every 1 s');
  schedule(PERIOD);
})();
