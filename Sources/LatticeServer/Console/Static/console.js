// The console's one script (served from /console/static, so the pages run under a
// Content Security Policy without 'unsafe-inline'). Each part acts only where its page
// has the elements it looks for.
(function () {
  'use strict';

  // Destructive forms ask first.
  document.querySelectorAll('form[data-confirm]').forEach(function (form) {
    form.addEventListener('submit', function (event) {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });

  // The create form: SKUs of the chosen region only, and the chosen SKU's price.
  var region = document.getElementById('region');
  var sku = document.getElementById('sku');
  var price = document.getElementById('price');
  function showPrice() {
    var option = sku && sku.selectedOptions[0];
    if (price) price.textContent = option ? option.dataset.price + option.dataset.unit : '';
  }
  function filterSkus() {
    var first = null;
    for (var i = 0; i < sku.options.length; i++) {
      var option = sku.options[i];
      var visible = option.dataset.region === region.value;
      option.hidden = !visible;
      option.disabled = !visible;
      if (visible && !first) first = option;
    }
    if (sku.selectedOptions.length === 0 || sku.selectedOptions[0].disabled) {
      if (first) sku.value = first.value;
    }
    showPrice();
  }
  if (region && sku) {
    region.addEventListener('change', filterSkus);
    sku.addEventListener('change', showPrice);
    filterSkus();
  }

  // Live status: every element tagged data-for="<instance>" data-when="<statuses>" is shown
  // only while the instance is in one of them (actions, SSH and Jupyter links), without a reload.
  var live = document.body.dataset.live;
  function applyStatus(name, status, reason) {
    var label = document.querySelector('[data-status-for="' + name + '"]');
    if (!label || label.textContent === status) return;
    label.textContent = status;
    label.className = 'status status-' + status;
    var why = document.querySelector('[data-reason-for="' + name + '"]');
    if (why) why.textContent = reason;
    document.querySelectorAll('[data-for="' + name + '"]').forEach(function (element) {
      element.hidden = element.dataset.when.split(' ').indexOf(status) < 0;
    });
  }
  function refresh() {
    fetch(live, { credentials: 'same-origin' })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (list) {
        if (!list) return;
        var seen = {};
        list.forEach(function (i) { seen[i.name] = true; applyStatus(i.name, i.status, i.statusReason); });
        document.querySelectorAll('[data-status-for]').forEach(function (label) {
          if (!seen[label.dataset.statusFor]) applyStatus(label.dataset.statusFor, 'Deleted', '');
        });
      })
      .catch(function () {});
  }
  // The namespace's event stream tells each change as it commits (EventSource resumes with
  // Last-Event-ID by itself); polling stands in where there is no stream or it gave up.
  var events = document.body.dataset.events;
  var polling = null;
  function poll() { if (live && !polling) polling = setInterval(refresh, 1500); }
  if (events && window.EventSource) {
    var stream = new EventSource(events);
    stream.onopen = refresh;  // whatever changed between the page and the stream
    stream.onmessage = function (message) {
      var event;
      try { event = JSON.parse(message.data); } catch (e) { return; }
      if (event.type === 'instance.status') applyStatus(event.instance, event.data.status, event.data.reason);
      if (event.type === 'instance.deleted') applyStatus(event.instance, 'Deleted', '');
    };
    stream.onerror = function () { if (stream.readyState === EventSource.CLOSED) poll(); };
  } else {
    poll();
  }

  // Copy a secret shown once.
  document.querySelectorAll('[data-copy]').forEach(function (button) {
    button.addEventListener('click', function () {
      var input = document.getElementById(button.dataset.copy);
      var out = document.getElementById('copy-result');
      function done() { if (out) out.textContent = 'Copied.'; }
      function fallback() { input.select(); document.execCommand('copy'); done(); }
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(input.value).then(done, fallback);
      } else {
        fallback();
      }
    });
  });

  // An instance's page: its log, refreshed as it grows, and a chart of its figures.
  var logs = document.getElementById('logs');
  if (logs && logs.dataset.logs) {
    var follow = function () {
      fetch(logs.dataset.logs, { credentials: 'same-origin' })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (text) {
          if (text === null || text === logs.textContent) return;
          var atEnd = logs.scrollTop + logs.clientHeight >= logs.scrollHeight - 4;
          logs.textContent = text;
          if (atEnd) logs.scrollTop = logs.scrollHeight;
        })
        .catch(function () {});
    };
    logs.scrollTop = logs.scrollHeight;
    setInterval(follow, 2000);
  }
  var chart = document.getElementById('metrics-chart');
  if (chart && chart.dataset.metrics && chart.getContext) {
    var points = [];
    var now = document.getElementById('metrics-now');
    var draw = function () {
      var g = chart.getContext('2d');
      var w = chart.width, h = chart.height;
      g.clearRect(0, 0, w, h);
      g.strokeStyle = '#ddd';
      for (var y = 0; y <= 4; y++) { g.beginPath(); g.moveTo(0, y * h / 4); g.lineTo(w, y * h / 4); g.stroke(); }
      var line = function (color, value) {
        g.strokeStyle = color;
        g.lineWidth = 2;
        g.beginPath();
        points.forEach(function (p, i) {
          var x = w - (points.length - 1 - i) * (w / 59);
          var v = Math.max(0, Math.min(100, value(p)));
          if (i === 0) g.moveTo(x, h - v * h / 100); else g.lineTo(x, h - v * h / 100);
        });
        g.stroke();
      };
      line('#2563eb', function (p) { return p.cpu; });
      line('#16a34a', function (p) { return p.gpu; });
    };
    var sample = function () {
      fetch(chart.dataset.metrics, { credentials: 'same-origin' })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (m) {
          if (!m) { if (now) now.textContent = 'No figures: the instance is not Running.'; return; }
          var gpu = m.gpus.length ? m.gpus.reduce(function (a, g) { return a + g.utilization; }, 0) / m.gpus.length : 0;
          var cores = Math.max(1, Math.ceil(m.cpuPercent / 100));
          points.push({ cpu: m.cpuPercent / cores, gpu: gpu });
          if (points.length > 60) points.shift();
          if (now) {
            now.textContent = 'CPU ' + m.cpuPercent.toFixed(1) + ' % (blue), memory ' +
              (m.memoryUsedBytes / 1073741824).toFixed(1) + ' of ' + (m.memoryLimitBytes / 1073741824).toFixed(1) +
              ' GiB, GPU ' + (m.gpus.length ? gpu.toFixed(0) + ' % (green) over ' + m.gpus.length : 'none');
          }
          draw();
        })
        .catch(function () {});
    };
    sample();
    setInterval(sample, 5000);
  }

  // The web terminal: xterm.js (served by Lattice from Debian's package) over a WebSocket
  // to a shell in the instance. Keystrokes go as binary frames, sizes as text
  // {"resize": {...}}; the shell's output comes back as binary, its end as {"exit": N} and a
  // refusal as {"code", "message"}.
  var box = document.getElementById('terminal');
  if (box && box.dataset.socket && window.Terminal) {
    var status = document.getElementById('terminal-status');
    var term = new window.Terminal({ cols: 100, rows: 28, cursorBlink: true });
    window.latticeTerminal = term;
    term.open(box);
    var scheme = window.location.protocol === 'https:' ? 'wss://' : 'ws://';
    var url = scheme + window.location.host + box.dataset.socket + '&cols=' + term.cols + '&rows=' + term.rows;
    var socket = new WebSocket(url);
    socket.binaryType = 'arraybuffer';
    var encoder = new TextEncoder();
    var decoder = new TextDecoder('utf-8');
    var ended = false;
    socket.onopen = function () {
      if (status) status.textContent = 'Connected.';
      term.focus();
    };
    socket.onmessage = function (event) {
      if (typeof event.data !== 'string') {
        term.write(decoder.decode(new Uint8Array(event.data), { stream: true }));
        return;
      }
      var message = null;
      try { message = JSON.parse(event.data); } catch (e) { return; }
      if (message && typeof message.exit === 'number') {
        ended = true;
        if (status) status.textContent = 'The shell ended (exit status ' + message.exit + ').';
      } else if (message && message.code) {
        ended = true;
        if (status) status.textContent = message.code + ': ' + message.message;
      }
    };
    socket.onclose = function () {
      if (!ended && status) status.textContent = 'Disconnected.';
    };
    term.on('data', function (data) {
      if (socket.readyState === WebSocket.OPEN) socket.send(encoder.encode(data));
    });
    term.on('resize', function (size) {
      if (socket.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify({ resize: { cols: size.cols, rows: size.rows } }));
      }
    });
  }
})();
