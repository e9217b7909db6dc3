// Draw the plotly figures whose JSON the page carries; the tables beside them work without this.
document.querySelectorAll('script[type="application/json"][data-chart]').forEach(function (node) {
  if (!window.Plotly) { return; }
  var figure = JSON.parse(node.textContent);
  window.Plotly.newPlot(node.dataset.chart, figure.data, figure.layout, {responsive: true, displayModeBar: false});
});
