/* The dashboard's charts (Chart.js, vendored): drawn from the figures the page carries
   (#dashboard-charts), again after htmx brings fresh figures. The tables beside each chart hold
   the same numbers for screen readers and print. */
(function () {
  "use strict";
  var charts = [];
  // The channels' colours, as on the board (workspace.css).
  var palette = {meituan: "#ffc300", eleme: "#0086ff", miniapp: "#07a35a", app: "#7a5af8", pos: "#667085"};

  function money(values) { return values.map(function (v) { return parseFloat(v); }); }

  function draw() {
    var source = document.getElementById("dashboard-charts");
    if (!source || typeof Chart === "undefined") { return; }
    charts.forEach(function (chart) { chart.destroy(); });
    charts = [];
    var data = JSON.parse(source.textContent);
    var animation = window.matchMedia("(prefers-reduced-motion: reduce)").matches ? false : {duration: 300};
    function bars(id, series, type) {
      var canvas = document.getElementById(id);
      if (!canvas) { return; }
      var sets = [{type: type, label: data.labels.orders, data: series.orders, backgroundColor: "#0b6bcb",
                   borderColor: "#0b6bcb", yAxisID: "y"}];
      var scales = {y: {beginAtZero: true, ticks: {precision: 0}, title: {display: true, text: data.labels.orders}}};
      if (series.takings.length) {
        sets.push({type: "line", label: data.labels.takings, data: money(series.takings), borderColor: "#f79009",
                   backgroundColor: "#f79009", yAxisID: "y1", tension: 0, pointRadius: 2});
        scales.y1 = {beginAtZero: true, position: "right", grid: {drawOnChartArea: false},
                     title: {display: true, text: data.labels.takings}};
      }
      charts.push(new Chart(canvas, {data: {labels: series.labels, datasets: sets},
        options: {responsive: true, maintainAspectRatio: false, animation: animation, interaction: {mode: "index", intersect: false},
                  scales: scales, plugins: {legend: {position: "bottom"}}}}));
    }
    bars("chart-hours", data.hours, "bar");
    bars("chart-days", data.days, "bar");
    var pie = document.getElementById("chart-channels");
    if (pie && data.channels.labels.length) {
      charts.push(new Chart(pie, {type: "doughnut",
        data: {labels: data.channels.labels, datasets: [{label: data.labels.orders, data: data.channels.orders,
               backgroundColor: data.channels.keys.map(function (key) { return palette[key] || "#98a2b3"; })}]},
        options: {responsive: true, maintainAspectRatio: false, animation: animation, plugins: {legend: {position: "right"}}}}));
    }
  }

  document.addEventListener("DOMContentLoaded", draw);
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.target && event.target.id === "dashboard-figures") { draw(); }
  });
})();
