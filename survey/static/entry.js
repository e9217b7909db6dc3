// Paper entry: after a valid choice number, move to the next box (Tab still works without this).
document.querySelectorAll('form.entry input.digit').forEach(function (box) {
  box.addEventListener('input', function () {
    if (/^[0-9]$/.test(box.value)) {
      var boxes = Array.prototype.slice.call(box.form.querySelectorAll('input'));
      var next = boxes[boxes.indexOf(box) + 1];
      if (next && next.type !== 'hidden') { next.focus(); next.select && next.select(); }
    }
  });
});
