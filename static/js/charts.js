// Charts for every <canvas data-chart-source="id">: the data is a json_script block
// ({labels, datasets: [{label, data}]}), so pages need no inline JavaScript under the CSP.
(function () {
  "use strict";
  if (!window.Chart) {
    return;
  }
  var canvases = document.querySelectorAll("canvas[data-chart-source]");
  Array.prototype.forEach.call(canvases, function (canvas) {
    var source = document.getElementById(canvas.getAttribute("data-chart-source"));
    if (!source) {
      return;
    }
    var data = JSON.parse(source.textContent);
    new window.Chart(canvas, {
      type: canvas.getAttribute("data-chart-type") || "bar",
      data: data,
      options: {
        responsive: true,
        animation: false,
        scales: { y: { beginAtZero: true } }
      }
    });
  });
})();
