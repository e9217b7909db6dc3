// School board: the "刷新" button works alone; with JavaScript the counts are fetched every minute
// (not while the page is hidden) and a change is announced once, politely, in the status line.
(function () {
  var table = document.getElementById('board');
  var status = document.getElementById('board-status');
  if (!table || !status || !window.fetch) { return; }
  var url = table.getAttribute('data-url');
  var seconds = parseInt(table.getAttribute('data-poll-seconds'), 10) || 60;
  var columns = {};
  Array.prototype.forEach.call(table.querySelectorAll('thead th'), function (th, index) {
    var field = th.getAttribute('data-field');
    if (field) { columns[field] = index; }
  });

  function percent(rate) { return Math.round(100 * rate) + '%'; }

  function setText(cell, text) {
    if (cell.textContent === text) { return false; }
    cell.textContent = text;
    return true;
  }

  function setProgress(cell, answered, pupils, rate) {
    var bar = cell.querySelector('progress');
    var label = cell.querySelector('span');
    if (!bar || !label || label.textContent === percent(rate)) { return; }
    bar.value = Math.min(answered, pupils);
    bar.textContent = percent(rate);
    label.textContent = percent(rate);
  }

  function update(data) {
    var changed = [];
    data.classes.forEach(function (c) {
      var row = table.querySelector('tr[data-class-id="' + c.id + '"]');
      if (!row) { return; }
      var cells = row.cells;
      var before = [cells[columns.parents_answered].textContent, cells[columns.pupils_answered].textContent];
      if (setText(cells[columns.parents_answered], String(c.parents_answered))) {
        changed.push(c.name + '家长答卷 ' + before[0] + ' → ' + c.parents_answered + ' 份');
      }
      if (setText(cells[columns.pupils_answered], String(c.pupils_answered))) {
        changed.push(c.name + '学生答卷 ' + before[1] + ' → ' + c.pupils_answered + ' 份');
      }
      setProgress(cells[columns.parent_rate], c.parents_answered, c.pupils, c.parent_rate);
      setProgress(cells[columns.pupil_rate], c.pupils_answered, c.pupils, c.pupil_rate);
    });
    if (changed.length) {
      total(data.classes);
      var now = new Date();
      var time = ('0' + now.getHours()).slice(-2) + ':' + ('0' + now.getMinutes()).slice(-2);
      status.textContent = time + ' 份数已更新：' + changed.join('；') + '。';
    }
  }

  // The school's total row (tfoot) follows the classes' counts.
  function total(classes) {
    var sums = { pupils: 0, parents_answered: 0, pupils_answered: 0 };
    classes.forEach(function (c) { sums.pupils += c.pupils; sums.parents_answered += c.parents_answered; sums.pupils_answered += c.pupils_answered; });
    var rate = function (n) { return sums.pupils ? percent(n / sums.pupils) : '—%'; };
    var values = { parents_answered: String(sums.parents_answered), pupils_answered: String(sums.pupils_answered),
                   parent_rate: rate(sums.parents_answered), pupil_rate: rate(sums.pupils_answered) };
    Array.prototype.forEach.call(table.querySelectorAll('tfoot [data-total]'), function (cell) {
      setText(cell, values[cell.getAttribute('data-total')]);
    });
  }

  function poll() {
    if (document.hidden) { return; }
    fetch(url, { credentials: 'same-origin', headers: { 'Accept': 'application/json' } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) { if (data && data.classes) { update(data); } })
      .catch(function () { /* offline for a moment: the next poll or the 刷新 button will catch up */ });
  }

  window.setInterval(poll, seconds * 1000);
  document.addEventListener('visibilitychange', function () { if (!document.hidden) { poll(); } });
}());
