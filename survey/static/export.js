// Background export: the "刷新" link works alone; with JavaScript the progress is fetched every
// two seconds while the page is visible, and the page reloads once the file is ready (or failed).
(function () {
  var box = document.getElementById('export-job');
  if (!box || box.getAttribute('data-state') !== 'running' || !window.fetch) { return; }
  var url = box.getAttribute('data-state-url');
  var text = document.getElementById('export-progress');
  var bar = box.querySelector('progress');
  var timer = null;

  function poll() {
    if (document.hidden) { schedule(); return; }
    fetch(url, {credentials: 'same-origin', headers: {'Accept': 'application/json'}})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        if (data.state !== 'running') { window.location.reload(); return; }
        if (text) { text.textContent = data.done + '/' + data.total; }
        if (bar) { bar.max = data.total || 1; bar.value = data.done; }
        schedule();
      })
      .catch(schedule);
  }

  function schedule() {
    window.clearTimeout(timer);
    timer = window.setTimeout(poll, 2000);
  }

  schedule();
}());
