// Progressive enhancement for every page. Pages work without it; the CSP (script-src 'self')
// allows scripts from files only, so behaviour is attached here through data- attributes.
(function () {
  "use strict";

  // <form data-confirm="Really?">: ask before a form that cannot be undone is sent.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  // <button data-copy="#selector" data-copied-label="Copied">: copy an element's text, e.g.
  // the member code a shopper reads out at the till.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy]");
    if (!button || !navigator.clipboard) {
      return;
    }
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source) {
      return;
    }
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      var label = button.getAttribute("data-copied-label");
      if (label) {
        button.textContent = label;
      }
    });
  });

  // <section data-swap-errors>: htmx swaps a 4xx answer into it too (a refused task says why
  // in the card it replaces) instead of dropping it as an error.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    var target = event.detail.target;
    if (status >= 400 && status < 500 && target && target.closest &&
        target.closest("[data-swap-errors]")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();
