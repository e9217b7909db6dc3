// Paper entry (keyboard only). Two jobs:
// 1. Skip rules: a row whose rule (data-relevant, the question's rule with choice numbers in place
//    of choice codes) does not hold is hidden and its box disabled (not sent); it appears as soon
//    as the answer it depends on is typed. What is typed is read as the answer it stands for
//    (data-kind): a choice number without leading zeros; several numbers "1,3" as "1 3" (a multiple
//    choice is its codes separated by spaces); digits, dates 20261208 -> 2026-12-08, times 0830 -> 08:30.
//    The rule is evaluated by the expression engine (window.SurveyExpr, static/expr.js) when the
//    page has it; else the first rule format ({"op": "=" | "!=" | "selected", "item", "value"},
//    {"op": "and" | "or", "args"}) is evaluated here. The server checks the rules either way.
// 2. After a complete choice number, move to the next box; boxes of hidden follow-up questions are
//    passed over, and a Tab pressed out of habit right after the move does not skip a question.
(function () {
  'use strict';
  var form = document.querySelector('form.entry');
  if (!form) { return; }
  var rows = Array.prototype.slice.call(form.querySelectorAll('[data-relevant]'));
  var rules = rows.map(function (row) { return JSON.parse(row.getAttribute('data-relevant')); });
  var hidden = {};  // item code -> true while its row is hidden: it counts as unanswered
  var today = form.getAttribute('data-today') || '';

  function ascii(text) {
    return text.replace(/[０-９]/g, function (d) { return String.fromCharCode(d.charCodeAt(0) - 0xFF10 + 48); })
      .replace(/[，、；;]/g, ',').replace(/．/g, '.').replace(/：/g, ':').replace(/－/g, '-').trim();
  }

  function number(text) { return /^[0-9]+$/.test(text) ? String(parseInt(text, 10)) : text; }

  function pad(text) { return text.length === 1 ? '0' + text : text; }

  // What a typed text stands for, as the answer the server would store (numbers for choices).
  function answerOf(kind, raw) {
    var text = ascii(raw || '');
    if (!text) { return ''; }
    if (kind === 'choice') { return number(text); }
    if (kind === 'multi') { return text.split(/[\s,]+/).filter(Boolean).map(number).join(' '); }
    var m;
    if (kind === 'date' || kind === 'datetime') {
      m = /^(\d{4})[-\/.年]?(\d{1,2})[-\/.月]?(\d{1,2})日?(?:[\sT]+(.*))?$/.exec(text);
      if (!m || (kind === 'date' && m[4])) { return text; }
      var day = m[1] + '-' + pad(m[2]) + '-' + pad(m[3]);
      return kind === 'date' ? day : day + 'T' + answerOf('time', m[4] || '');
    }
    if (kind === 'time') {
      m = /^(\d{1,2})[:点时](\d{1,2})?分?$/.exec(text) || /^(\d{2})(\d{2})$/.exec(text);
      return m ? pad(m[1]) + ':' + pad(m[2] || '0') : text;
    }
    return text;
  }

  function answer(code) {
    if (hidden[code]) { return ''; }
    var box = form.elements.namedItem(code);
    if (!box || box.disabled) { return ''; }
    return answerOf(box.getAttribute('data-kind') || '', box.value);
  }

  function legacy(rule) {
    if (Array.isArray(rule)) { return true; }  // the engine's tree without its script: shown, the server checks
    if (rule.op === 'and') { return rule.args.every(legacy); }
    if (rule.op === 'or') { return rule.args.some(legacy); }
    var given = answer(rule.item);
    if (rule.op === 'selected') { return given.split(' ').indexOf(rule.value) >= 0; }
    return rule.op === '!=' ? given !== rule.value : given === rule.value;
  }

  function holds(rule) {
    if (window.SurveyExpr && !(rule && rule.op)) {
      return window.SurveyExpr.holds(rule, { answer: answer, dot: '', column: function () { return ''; }, today: today });
    }
    return legacy(rule);
  }

  function update() {
    // In page order: a rule only looks at earlier questions, whose state is already settled.
    rows.forEach(function (row, index) {
      var code = row.getAttribute('data-item');
      delete hidden[code];
      var show = holds(rules[index]);
      if (!show) { hidden[code] = true; }
      if (row.hidden === !show) { return; }
      row.hidden = !show;
      row.querySelectorAll('input, textarea, select').forEach(function (field) { field.disabled = !show; });
    });
  }

  function advance(event) {
    var box = event.target;
    if (!box.classList || !box.classList.contains('digit')) { return; }
    if (/^[0-9]+$/.test(box.value) && box.value.length >= box.maxLength) {
      var boxes = Array.prototype.filter.call(form.querySelectorAll('input'), function (b) {
        return b.type !== 'hidden' && !b.disabled;
      });
      var next = boxes[boxes.indexOf(box) + 1];
      if (next) { next.focus(); if (next.select) { next.select(); } moved = next; }
    }
  }

  // A worker used to Tab after each number: the Tab right after a move would skip a question. It
  // is swallowed while the box it would leave is the one just moved to and still empty.
  var moved = null;
  form.addEventListener('keydown', function (event) {
    if (event.key === 'Tab' && !event.shiftKey && event.target === moved && !moved.value) {
      event.preventDefault();
    }
    if (event.key !== 'Shift') { moved = event.target === moved && event.key === 'Tab' ? null : moved; }
  });
  form.addEventListener('focusin', function (event) { if (event.target !== moved) { moved = null; } });

  if (rows.length) {
    form.addEventListener('change', update);
    form.addEventListener('input', update);
    update();
  }
  form.addEventListener('input', advance);  // after the rules: a box that has just appeared takes the next digit
}());
