// Paper entry: after a complete choice number, move to the next box (Tab still works without this).
// Boxes of follow-up questions that skip.js has disabled are passed over.
document.querySelectorAll('form.entry input.digit').forEach(function (box) {
  box.addEventListener('input', function () {
    if (/^[0-9]+$/.test(box.value) && box.value.length >= box.maxLength) {
      var boxes = Array.prototype.filter.call(box.form.querySelectorAll('input'), function (b) {
        return b.type !== 'hidden' && !b.disabled;
      });
      var next = boxes[boxes.indexOf(box) + 1];
      if (next) { next.focus(); next.select && next.select(); }
    }
  });
});
