// Skip rules (progressive enhancement). Without this script every follow-up question is shown
// with a line saying when to answer it, and the server checks the rules. With it, a question
// whose rule does not hold is hidden and its fields disabled (not sent); it appears as soon as
// the answer it depends on is chosen. The rule is the Condition tree of the questionnaire in
// data-relevant: {"op": "=" | "!=" | "selected", "item", "value"} or {"op": "and" | "or", "args"}.
(function () {
  'use strict';
  var blocks = Array.prototype.slice.call(document.querySelectorAll('[data-relevant]'));
  if (!blocks.length) { return; }
  var form = blocks[0].closest('form');
  var rules = blocks.map(function (block) { return JSON.parse(block.getAttribute('data-relevant')); });
  var hidden = {};  // item code -> true while its question is hidden: it counts as unanswered

  function answer(code) {
    if (hidden[code]) { return ''; }
    var field = form.elements.namedItem(code);
    if (!field) { return ''; }
    var value = (field.value || '').trim();  // a radio group (RadioNodeList) gives the checked value
    if (field.classList && field.classList.contains('digit')) {  // paper entry: typed choice numbers
      value = value.replace(/[０-９]/g, function (d) { return String.fromCharCode(d.charCodeAt(0) - 0xFF10 + 48); });
      value = /^[0-9]+$/.test(value) ? String(parseInt(value, 10)) : value;
    }
    return value;
  }

  function holds(rule) {
    if (rule.op === 'and') { return rule.args.every(holds); }
    if (rule.op === 'or') { return rule.args.some(holds); }
    var given = answer(rule.item);
    return rule.op === '!=' ? given !== rule.value : given === rule.value;
  }

  function update() {
    // In page order: a rule only looks at earlier questions, whose state is already settled.
    blocks.forEach(function (block, index) {
      var code = block.getAttribute('data-item');
      delete hidden[code];
      var show = holds(rules[index]);
      if (!show) { hidden[code] = true; }
      if (block.hidden === !show) { return; }
      block.hidden = !show;
      block.querySelectorAll('input, textarea, select').forEach(function (field) { field.disabled = !show; });
    });
  }

  // Capture: rules are settled before other handlers (paper entry's move to the next box) run.
  document.addEventListener('change', update, true);
  document.addEventListener('input', update, true);
  update();
}());
