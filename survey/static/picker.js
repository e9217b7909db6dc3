// Community picker: a search box that narrows the list. Without JavaScript the list works alone.
(function () {
  var search = document.getElementById('community-search');
  var select = document.getElementById('f-community');
  if (!search || !select) { return; }
  search.hidden = false;
  search.addEventListener('input', function () {
    var needle = search.value.trim();
    var first = null;
    Array.prototype.forEach.call(select.querySelectorAll('optgroup'), function (group) {
      var any = false;
      Array.prototype.forEach.call(group.querySelectorAll('option'), function (option) {
        var show = !needle || option.textContent.indexOf(needle) >= 0 || group.label.indexOf(needle) >= 0;
        option.hidden = !show;
        option.disabled = !show;
        if (show) { any = true; if (!first) { first = option; } }
      });
      group.hidden = !any;
    });
    if (needle && first && (select.selectedIndex <= 0 || select.options[select.selectedIndex].hidden)) {
      first.selected = true;
    }
  });
}());
