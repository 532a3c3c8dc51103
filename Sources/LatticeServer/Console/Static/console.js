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
  if (live) setInterval(refresh, 1500);

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
})();
