/* roomgate embed.js: both sides of an embedded room app, without dependencies.
 *
 * Host page:  RoomgateEmbed.mount({iframe, launchUrl, getToken}) sets the iframe's src,
 *   waits for {type: "roomgate:ready"} from the iframe (that window, that origin), then
 *   posts {type: "roomgate:auth", token} to that origin only; again for every token that
 *   getToken() gives (it may return a token string, or the refresh answer
 *   {access_token, token_expires_at}, which schedules the next refresh).
 * Inside the iframe:  RoomgateEmbed.onToken(fn) announces ready to the parent and hands
 *   fn each token posted by the parent window from an origin the session allows;
 *   RoomgateEmbed.fetch(url, init) sends X-Roomgate-Embed-Token and asks for a fresh
 *   token after a 401.
 * A token only ever travels by postMessage or in a header: never in a URL.
 */
(function (global) {
  'use strict';
  var READY = 'roomgate:ready';
  var AUTH = 'roomgate:auth';
  var REFRESH = 'roomgate:refresh';
  var HEADER = 'X-Roomgate-Embed-Token';

  function isToken(t) {
    return typeof t === 'string' && t.indexOf('mtok_') === 0 && t.length < 200;
  }

  /* ---- host page -------------------------------------------------------------------- */

  function mount(opts) {
    if (!opts || !opts.iframe || !opts.launchUrl || typeof opts.getToken !== 'function') {
      throw new Error('RoomgateEmbed.mount needs {iframe, launchUrl, getToken}');
    }
    var iframe = opts.iframe;
    var appOrigin = new URL(opts.launchUrl, global.location.href).origin;
    var token = null;
    var expires = 0;
    var timer = null;
    var stopped = false;

    function post() {
      if (!stopped && token && iframe.contentWindow) {
        iframe.contentWindow.postMessage({ type: AUTH, token: token }, appOrigin);
      }
    }

    function refresh() {
      clearTimeout(timer);
      return Promise.resolve(opts.getToken()).then(function (got) {
        var t = typeof got === 'string' ? got : got && got.access_token;
        if (!isToken(t)) throw new Error('getToken gave no embed token');
        token = t;
        var at = got && got.token_expires_at ? Date.parse(got.token_expires_at) : NaN;
        expires = isNaN(at) ? 0 : at;
        if (expires && !stopped) {
          timer = setTimeout(refresh, Math.max(5000, (expires - Date.now()) * 0.8));
        }
        post();
      }).catch(function (e) {
        if (typeof opts.onError === 'function') opts.onError(e);
      });
    }

    function onMessage(event) {
      // Only the iframe we mounted, and only from the app's origin.
      if (event.source !== iframe.contentWindow || event.origin !== appOrigin) return;
      var data = event.data;
      if (!data || typeof data !== 'object') return;
      if (data.type === READY) {
        if (token && (!expires || expires - Date.now() > 10000)) post();
        else refresh();
      } else if (data.type === REFRESH) {
        refresh();
      }
    }

    global.addEventListener('message', onMessage);
    iframe.src = opts.launchUrl;
    return {
      refresh: refresh,
      unmount: function () {
        stopped = true;
        clearTimeout(timer);
        global.removeEventListener('message', onMessage);
      }
    };
  }

  /* ---- inside the iframe ------------------------------------------------------------ */

  var frame = null;

  function startFrame() {
    if (frame) return frame;
    frame = { allowed: [], token: null, listeners: [], errors: [] };
    var f = frame;
    f.ready = global.fetch('/.roomgate/embed/session', {
      credentials: 'same-origin',
      headers: { Accept: 'application/json' }
    }).then(function (r) {
      if (!r.ok) throw new Error('no embed session (' + r.status + ')');
      return r.json();
    }).then(function (info) {
      f.allowed = Array.isArray(info.allowed_origins) ? info.allowed_origins : [];
      global.addEventListener('message', function (event) {
        // Only the parent window, and only from an origin the session allows.
        if (event.source !== global.parent || f.allowed.indexOf(event.origin) < 0) return;
        var data = event.data;
        if (!data || data.type !== AUTH || !isToken(data.token)) return;
        f.token = data.token;
        f.listeners.forEach(function (fn) { fn(f.token); });
      });
      announce(READY);
    }).catch(function (e) {
      f.errors.forEach(function (fn) { fn(e); });
    });
    return f;
  }

  function announce(type) {
    if (global.parent === global) return;
    frame.allowed.forEach(function (origin) {
      global.parent.postMessage({ type: type }, origin);
    });
  }

  function onToken(fn, onError) {
    var f = startFrame();
    f.listeners.push(fn);
    if (typeof onError === 'function') f.errors.push(onError);
    if (f.token) fn(f.token);
  }

  function requestToken() {
    startFrame().ready.then(function () { announce(REFRESH); });
  }

  function currentToken() {
    var f = startFrame();
    if (f.token) return Promise.resolve(f.token);
    return new Promise(function (resolve) { f.listeners.push(resolve); });
  }

  function embedFetch(url, init) {
    return currentToken().then(function (t) {
      var opts = Object.assign({}, init || {});
      var headers = new Headers(opts.headers || {});
      headers.set(HEADER, t);
      opts.headers = headers;
      opts.credentials = 'same-origin';
      return global.fetch(url, opts).then(function (r) {
        if (r.status === 401) requestToken();
        return r;
      });
    });
  }

  global.RoomgateEmbed = {
    mount: mount,
    onToken: onToken,
    requestToken: requestToken,
    fetch: embedFetch
  };
})(window);
