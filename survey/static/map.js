// The office map on a desktop: plotly's choropleth of the same outlines (plotly.js from this server,
// loaded only here and only on a wide screen with a mouse). Without it the page shows the SVG map,
// which stays one click away (and is what phones, print and the PDF get).
(function () {
  var data = document.getElementById('map-figure');
  var box = document.getElementById('map-interactive');
  var still = document.getElementById('map-static');
  var toggle = document.getElementById('map-switch');
  if (!data || !box || !still || !window.matchMedia('(min-width: 900px) and (pointer: fine)').matches) { return; }
  var script = document.createElement('script');
  script.src = box.dataset.plotly;
  script.onload = function () {
    var figure = JSON.parse(data.textContent);
    box.hidden = false;
    window.Plotly.newPlot(box, figure.data, figure.layout, {
      responsive: true, displaylogo: false, scrollZoom: true, modeBarButtonsToRemove: ['select2d', 'lasso2d'],
      topojsonURL: box.dataset.topojson
    }).then(function () {
      still.hidden = true;
      toggle.parentNode.hidden = false;
    }, function () {
      box.hidden = true;  // the SVG map stays
    });
    box.on('plotly_click', function (event) {
      var point = event.points && event.points[0];
      var link = point && point.customdata && point.customdata[3];
      if (link && link.charAt(0) === '/') { window.location.href = link; }
    });
  };
  toggle.addEventListener('click', function () {
    var showStill = still.hidden;
    still.hidden = !showStill;
    box.hidden = showStill;
    toggle.textContent = showStill ? '显示交互地图' : '显示静态地图';
    if (!showStill && window.Plotly) { window.Plotly.Plots.resize(box); }
  });
  document.head.appendChild(script);
}());
