// The supervisor's chart of a merchant's daily issuance. Data comes from a JSON script block
// (json_script), so the page needs no inline JavaScript under the CSP.
(function () {
  "use strict";
  var canvas = document.getElementById("flows-chart");
  if (!canvas || !window.Chart) {
    return;
  }
  var source = document.getElementById(canvas.getAttribute("data-chart-source"));
  var rows = JSON.parse(source.textContent);
  new window.Chart(canvas, {
    type: "bar",
    data: {
      labels: rows.map(function (r) { return r.day; }),
      datasets: [
        { label: canvas.getAttribute("data-label-issued"), data: rows.map(function (r) { return r.issued; }) },
        { label: canvas.getAttribute("data-label-returned"), data: rows.map(function (r) { return r.returned; }) }
      ]
    },
    options: { responsive: true, animation: false }
  });
})();
