// A target's response-time chart (uPlot), drawn from the JSON the page carries; redrawn after each refresh.
(function () {
  "use strict";
  var plot = null;

  function draw() {
    var holder = document.getElementById("chart");
    var source = document.getElementById("chart-data");
    if (!holder || !source || typeof uPlot === "undefined") return;
    var data = JSON.parse(source.textContent);
    if (plot) plot.destroy();
    holder.textContent = "";
    if (!data[0].length) {
      holder.textContent = "No checks yet.";
      plot = null;
      return;
    }
    plot = new uPlot({
      width: Math.max(240, Math.min(holder.clientWidth || 600, 900)),
      height: 180,
      series: [{}, {label: "response (ms)", stroke: "#2563eb", width: 1.5, spanGaps: false}],
      axes: [{}, {label: "ms"}],
      legend: {show: false}
    }, data, holder);
  }

  document.addEventListener("dashboard:swapped", draw);
  draw();
})();
