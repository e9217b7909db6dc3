// Community picker: a search box that narrows the list. Without JavaScript the list works alone.
// A choice the search hides is never kept: the form must not send a community the parent cannot see.
(function () {
  var search = document.getElementById('community-search');
  var select = document.getElementById('f-community');
  if (!search || !select) { return; }
  search.hidden = false;
  var status = document.createElement('p');
  status.id = 'community-search-status';
  status.className = 'muted';
  status.setAttribute('role', 'status');
  status.setAttribute('aria-live', 'polite');
  search.parentNode.insertBefore(status, search.nextSibling);
  search.addEventListener('input', function () {
    var needle = search.value.trim();
    // Latin letters also match a name's pinyin or its initials (guihua, ghsq: 桂花社区), in any case.
    var latin = needle.replace(/[\s']/g, '').toLowerCase();
    latin = /^[a-z0-9]+$/.test(latin) ? latin : '';
    var first = null;
    var count = 0;
    Array.prototype.forEach.call(select.querySelectorAll('optgroup'), function (group) {
      var any = false;
      Array.prototype.forEach.call(group.querySelectorAll('option'), function (option) {
        var show = !needle || option.textContent.indexOf(needle) >= 0 || group.label.indexOf(needle) >= 0 ||
          (latin && (option.getAttribute('data-pinyin') || '').indexOf(latin) >= 0);
        option.hidden = !show;
        option.disabled = !show;
        if (show) { any = true; count += 1; if (!first) { first = option; } }
      });
      group.hidden = !any;
    });
    var chosen = select.selectedIndex > 0 ? select.options[select.selectedIndex] : null;
    var hiddenChoice = chosen && chosen.hidden;
    if (needle && first && (!chosen || hiddenChoice)) {
      first.selected = true;
    } else if (hiddenChoice) {
      select.value = '';
    }
    if (!needle) {
      status.textContent = '';
    } else if (!first) {
      status.textContent = '没有找到“' + needle + '”，请换个关键词' + (hiddenChoice ? '（之前选择的社区已取消，请重新选择）' : '') + '。';
    } else {
      status.textContent = '找到 ' + count + ' 个社区，已选中“' + select.options[select.selectedIndex].textContent + '”，可在下面的列表中更改。';
    }
  });
}());
