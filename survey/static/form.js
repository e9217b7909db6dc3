// The questionnaire with scripts (progressive enhancement: without this file everything works, on
// one long page, and the server checks every answer). With it: follow-up questions hide until
// their rule holds (their fields disabled, not sent); lists cut by earlier answers follow them;
// labels quoting an answer (${q}) show it; "以上都没有" unticks the other choices; answers are
// checked as they are typed; field-list groups become pages with 上一页/下一页; a bar shows how
// much is answered; and a draft is kept on the phone (localStorage, never sent) until the
// thank-you page (static/thanks.js) clears it. What it reads is in data attributes written by
// public/_items.html. Rules are evaluated by window.SurveyExpr (static/expr.js) when the page
// has it, else by the small evaluator below, which knows the first format of rules only.
(function () {
  'use strict';
  var form = document.querySelector('form.questionnaire');
  if (!form) { return; }
  document.documentElement.className += ' js';
  var DRAFT = 'survey-draft:' + location.pathname;
  var DRAFT_DAYS = 30;
  var REQUIRED = '请选择一项';
  var FULLWIDTH = /[０-９．－：]/g;

  function all(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }
  function json(element, name) {
    var text = element.getAttribute(name);
    if (text === null) { return null; }
    try { return JSON.parse(text); } catch (e) { return undefined; }
  }
  var words = json(form, 'data-ui') || {};
  function say(text) {  // the page's language (data-ui: its words by their Chinese), {0} {1} filled in
    var args = arguments;
    return (words[text] || text).replace(/\{(\d)\}/g, function (_, n) { return args[+n + 1]; });
  }
  function pad(n) { return (n < 10 ? '0' : '') + n; }
  var now = new Date();
  var today = now.getFullYear() + '-' + pad(now.getMonth() + 1) + '-' + pad(now.getDate());

  var questions = all('[data-item]', form);
  var byCode = {};
  questions.forEach(function (q) { byCode[q.getAttribute('data-item')] = q; });
  var hidden = {};  // item code -> true while its rule does not hold: it counts as unanswered
  var unsure = {};  // item code -> true when its rule cannot be read here: shown, and left to the server to require

  // ---- Answers, as the server reads them (forms/items.py): codes joined by spaces, "lat lon"...
  function named(name) {
    return all('[name]', form).filter(function (field) { return field.name === name; });
  }
  function plain(text) {
    return text.replace(FULLWIDTH, function (c) {
      var at = '０１２３４５６７８９'.indexOf(c);
      return at >= 0 ? String(at) : { '．': '.', '－': '-', '：': ':' }[c];
    }).trim();
  }
  function answer(code) {
    if (hidden[code]) { return null; }
    var fields = named(code);
    if (!fields.length) {
      var lat = named(code + '.lat'), lon = named(code + '.lon');
      if (!lat.length) { return null; }
      var point = (plain(lat[0].value) + ' ' + plain(lon[0].value)).trim();
      return point || null;
    }
    var first = fields[0];
    if (first.type === 'radio' || first.type === 'checkbox') {
      var codes = fields.filter(function (f) { return f.checked; }).map(function (f) { return f.value; });
      return codes.length ? codes.join(' ') : null;
    }
    if (first.type === 'file') { return first.files && first.files.length ? first.files[0].name : null; }
    var value = first.classList.contains('typed') ? plain(first.value) : first.value.trim();
    return value || null;
  }
  function display(code) {
    var given = answer(code);
    if (given === null) { return ''; }
    var words = [];
    named(code).forEach(function (field) {
      if ((field.type === 'radio' || field.type === 'checkbox') && field.checked) {
        words.push(field.closest('label').textContent.trim());
      } else if (field.tagName === 'SELECT' && field.selectedIndex > 0) {
        words.push(field.options[field.selectedIndex].textContent);
      }
    });
    return words.length ? words.join('、') : given;
  }

  // ---- Rules: true, false, or null when this page cannot tell (then nothing is hidden or refused).
  var engine = window.SurveyExpr;
  function firstFormat(tree, env) {
    if (tree.op === 'and') { return tree.args.every(function (t) { return firstFormat(t, env); }); }
    if (tree.op === 'or') { return tree.args.some(function (t) { return firstFormat(t, env); }); }
    if (typeof tree.item !== 'string' || ['=', '!=', 'selected'].indexOf(tree.op) < 0) { throw new Error('rule'); }
    var given = env.answer(tree.item) || '';
    if (tree.op === 'selected') { return given.split(' ').indexOf(tree.value) >= 0; }
    return tree.op === '!=' ? given !== tree.value : given === tree.value;
  }
  function holds(tree, dot, columns) {
    if (!tree) { return null; }
    var env = {
      answer: answer, dot: dot === undefined ? null : dot, today: today,
      column: function (name) { return columns && columns[name] !== undefined ? String(columns[name]) : null; }
    };
    try {
      return engine ? !!engine.holds(tree, env) : firstFormat(tree, env);
    } catch (e) {
      return null;
    }
  }

  // ---- Follow-ups, lists, piping, the answered bar: worked out again after every change.
  var relevant = questions.filter(function (q) { return q.hasAttribute('data-relevant'); });
  function follow() {
    // In page order: a rule only reads earlier questions, whose state is settled already.
    relevant.forEach(function (q) {
      var code = q.getAttribute('data-item');
      delete hidden[code];
      var rule = holds(json(q, 'data-relevant'));
      var show = rule !== false;
      unsure[code] = rule === null;
      if (!show) { hidden[code] = true; }
      if (q.hidden === !show) { return; }
      q.hidden = !show;
      all('input, textarea, select', q).forEach(function (field) {
        if (!field.hasAttribute('data-ro')) { field.disabled = !show; }
      });
    });
  }

  var lists = all('[data-filter]', form).map(function (q) {
    var select = q.querySelector('select');
    var spare = q.querySelector('template');
    var options = all('option', select).concat(spare ? all('option', spare.content) : []);
    return {
      q: q, select: select, rule: json(q, 'data-filter'), needs: json(q, 'data-needs') || {},
      wait: q.querySelector('.wait'), shown: null,
      placeholder: options[0].cloneNode(true),
      options: options.slice(1).map(function (option) {
        var group = option.parentNode.tagName === 'OPTGROUP' ? option.parentNode.label : '';
        return { option: option.cloneNode(true), columns: json(option, 'data-columns') || {}, group: group };
      })
    };
  });
  function cut(list) {
    var missing = Object.keys(list.needs).filter(function (code) { return answer(code) === null; });
    var kept = list.options.filter(function (o) { return missing.length || holds(list.rule, null, o.columns) !== false; });
    var key = missing.length + ':' + kept.map(function (o) { return o.option.value; }).join(' ');
    if (list.wait) {
      list.wait.hidden = !missing.length;
      if (missing.length) { list.wait.firstChild.nodeValue = say('请先回答') + list.needs[missing[0]]; }
    }
    if (key === list.shown) { return; }
    list.shown = key;
    var value = list.select.value;
    list.select.textContent = '';
    list.select.appendChild(list.placeholder.cloneNode(true));
    var group = null;
    kept.forEach(function (o) {
      var parent = list.select;
      if (missing.length && o.group) {
        if (!group || group.label !== o.group) {
          group = document.createElement('optgroup');
          group.label = o.group;
          list.select.appendChild(group);
        }
        parent = group;
      }
      parent.appendChild(o.option.cloneNode(true));
    });
    list.select.value = value;
    if (list.select.value !== value) { list.select.value = ''; }
  }

  function pipe() {
    all('[data-pipe]', form).forEach(function (span) {
      var text = display(span.getAttribute('data-pipe')) || span.getAttribute('data-empty');
      if (span.textContent !== text) { span.textContent = text; }
    });
  }

  var bar = document.createElement('div');
  bar.className = 'answered';
  bar.setAttribute('role', 'progressbar');
  bar.setAttribute('aria-label', say('已答题目'));
  bar.setAttribute('aria-valuemin', '0');
  bar.appendChild(document.createElement('span'));
  document.body.insertBefore(bar, document.body.firstChild);
  function progress() {
    var asked = questions.filter(function (q) { return !q.hidden && q.classList.contains('question'); });
    var done = asked.filter(function (q) { return answer(q.getAttribute('data-item')) !== null; }).length;
    bar.setAttribute('aria-valuemax', String(asked.length));
    bar.setAttribute('aria-valuenow', String(done));
    bar.setAttribute('aria-valuetext', say('已答 {0} 题，共 {1} 题', done, asked.length));
    bar.firstChild.style.width = (asked.length ? 100 * done / asked.length : 0) + '%';
  }

  function update() {
    for (var round = 0; round < 2; round += 1) {  // a list cut can clear an answer a later rule reads
      follow();
      lists.forEach(cut);
    }
    pipe();
    progress();
  }

  // ---- Checks: the required message, the constraint's message, a number's form.
  function problem(q, strict) {
    if (q.hidden || q.closest('[hidden]')) { return null; }
    var code = q.getAttribute('data-item');
    var given = answer(code);
    if (given === null) {
      return strict && q.hasAttribute('data-required') && !unsure[code] ? (q.getAttribute('data-required') || REQUIRED) : null;
    }
    var box = q.querySelector('input.typed[inputmode]');
    if (box && box.name === code) {
      if (box.inputMode === 'numeric' && !/^-?\d+$/.test(given)) { return say('请填写整数'); }
      if (box.inputMode === 'decimal' && !/^-?(\d+(\.\d*)?|\.\d+)$/.test(given)) { return say('请填写数字'); }
    }
    if (holds(json(q, 'data-constraint'), given) === false) {
      return q.getAttribute('data-message') || '答案不符合要求';
    }
    return null;
  }
  function control(q) {
    return q.tagName === 'FIELDSET' ? q : q.querySelector('input, select, textarea');
  }
  function describe(element, id, on) {
    var ids = (element.getAttribute('aria-describedby') || '').split(' ').filter(function (x) { return x && x !== id; });
    if (on) { ids.push(id); }
    if (ids.length) { element.setAttribute('aria-describedby', ids.join(' ')); } else { element.removeAttribute('aria-describedby'); }
  }
  function mark(q, message) {
    var id = 'e-' + q.getAttribute('data-item');
    var line = document.getElementById(id);
    var target = control(q);
    if (!message) {
      if (line) { line.parentNode.removeChild(line); }
      q.classList.remove('invalid');
      target.removeAttribute('aria-invalid');
      describe(target, id, false);
      return;
    }
    if (!line) {
      line = document.createElement('p');
      line.className = 'error';
      line.id = id;
      var before = q.classList.contains('tl-row') ? null : q.querySelector(':scope > .choices, :scope > .scale, :scope > .geo, :scope > input, :scope > select, :scope > textarea, :scope > .choice');
      q.insertBefore(line, before);
    }
    line.textContent = message;
    q.classList.add('invalid');
    target.setAttribute('aria-invalid', 'true');
    describe(target, id, true);
  }
  function check(scope) {
    var wrong = null;
    questions.forEach(function (q) {
      if (!scope.contains(q) || !q.classList.contains('question')) { return; }
      var message = problem(q, true);
      mark(q, message);
      if (message && !wrong) { wrong = q; }
    });
    return wrong;
  }
  function focus(q) {
    var field = q.querySelector('input:not([type=hidden]), select, textarea') || q;
    q.scrollIntoView({ block: 'center' });
    field.focus({ preventScroll: true });
  }

  // ---- Pages: each field-list group one page; the groups between them pages of their own.
  var sections = all('section.card', form);
  var pages = [];
  if (form.querySelector('section[data-page]')) {
    sections.forEach(function (section) {
      var last = pages[pages.length - 1];
      if (section.hasAttribute('data-page') || !last || last.own) {
        pages.push({ sections: [section], own: section.hasAttribute('data-page') });
      } else {
        last.sections.push(section);
      }
    });
  }
  var at = 0;
  var submit = form.querySelector('.submit');
  var send = submit.querySelector('button');
  var intro = document.querySelector('header.intro');
  var status, fill, back, next;
  function show(n, moved) {
    at = Math.max(0, Math.min(n, pages.length - 1));
    pages.forEach(function (page, index) {
      page.sections.forEach(function (section) { section.hidden = index !== at; });
    });
    if (intro) { intro.hidden = at > 0; }
    status.textContent = say('第{0}页，共{1}页', at + 1, pages.length);
    fill.style.width = (100 * (at + 1) / pages.length) + '%';
    back.hidden = at === 0;
    next.hidden = at === pages.length - 1;
    submit.hidden = send.hidden = at !== pages.length - 1;
    if (moved) {
      var heading = pages[at].sections[0].querySelector('h2') || pages[at].sections[0];
      heading.setAttribute('tabindex', '-1');
      form.scrollIntoView();
      heading.focus({ preventScroll: true });
    }
  }
  function pageOf(element) {
    for (var n = 0; n < pages.length; n += 1) {
      if (pages[n].sections.some(function (s) { return s.contains(element); })) { return n; }
    }
    return at;
  }
  function button(text, cls) {
    var b = document.createElement('button');
    b.type = 'button';
    b.className = cls;
    b.textContent = text;
    return b;
  }
  if (pages.length > 1) {
    var top = document.createElement('div');
    top.className = 'pages';
    status = document.createElement('p');
    status.setAttribute('aria-live', 'polite');
    var track = document.createElement('div');
    track.className = 'track';
    fill = document.createElement('span');
    track.appendChild(fill);
    top.appendChild(status);
    top.appendChild(track);
    form.insertBefore(top, sections[0]);
    var nav = document.createElement('div');
    nav.className = 'pager-nav';
    back = button(say('上一页'), 'back');
    next = button(say('下一页'), 'next');
    nav.appendChild(back);
    nav.appendChild(next);
    nav.appendChild(send);  // on the last page 提交问卷 takes the place of 下一页
    form.insertBefore(nav, submit);
    back.addEventListener('click', function () { show(at - 1, true); });
    next.addEventListener('click', function () {
      var wrong = null;
      pages[at].sections.forEach(function (section) { wrong = wrong || check(section); });
      if (wrong) { focus(wrong); } else { show(at + 1, true); }
    });
  } else {
    pages = [];
  }

  form.addEventListener('submit', function (event) {
    if (pages.length && at < pages.length - 1) {  // Enter in a box before the last page: the next page
      event.preventDefault();
      next.click();
      return;
    }
    var wrong = check(form);
    if (wrong) {
      event.preventDefault();
      if (pages.length) { show(pageOf(wrong), false); }
      focus(wrong);
      return;
    }
    saveNow();
  });

  // ---- Events: exclusive choices, checks as answers change, a draft kept.
  // A box's change comes with the tap that leaves it: a message shown then would move the page under
  // the finger and the tap would miss. Messages wait until the tap is over.
  var pressed = false;
  var later = [];
  function whenFree(run) { if (pressed) { later.push(run); } else { run(); } }
  function release() {
    pressed = false;
    var waiting = later;
    later = [];
    setTimeout(function () { waiting.forEach(function (run) { run(); }); }, 0);
  }
  document.addEventListener('pointerdown', function () { pressed = true; }, true);
  document.addEventListener('click', release, true);
  document.addEventListener('pointercancel', release, true);
  document.addEventListener('pointerup', function () { setTimeout(function () { if (pressed) { release(); } }, 400); }, true);
  var timer = null;
  function changed(event) {
    var field = event.target;
    if (field.type === 'checkbox' && field.checked) {
      var alone = field.hasAttribute('data-exclusive');
      named(field.name).forEach(function (other) {
        if (other !== field && (alone || other.hasAttribute('data-exclusive'))) { other.checked = false; }
      });
    }
    update();
    var q = field.closest && field.closest('[data-item]');
    if (q && q.classList.contains('question')) {
      var shown = q.classList.contains('invalid');
      // While typing, an error already shown is cleared as soon as the answer is right; a new one waits for the change.
      if (event.type === 'change' || shown) { whenFree(function () { mark(q, problem(q, shown)); }); }
    }
    clearTimeout(timer);
    timer = setTimeout(saveNow, 400);
  }
  form.addEventListener('change', changed);
  form.addEventListener('input', changed);

  function fields() {
    return all('input, select, textarea', form).filter(function (f) {
      return f.name && f.name.charAt(0) !== '_' && f.name !== 'submission_key' && f.type !== 'file' && f.type !== 'hidden';
    });
  }
  function saveNow() {
    var kept = [];
    fields().forEach(function (f) {
      if ((f.type === 'radio' || f.type === 'checkbox') ? f.checked : f.value) { kept.push([f.name, f.value]); }
    });
    try {
      if (kept.length) { localStorage.setItem(DRAFT, JSON.stringify({ t: Date.now(), v: kept, p: at })); } else { localStorage.removeItem(DRAFT); }
    } catch (e) { /* private mode or full: no draft */ }
  }
  function restore(kept) {
    for (var round = 0; round < 2; round += 1) {  // the second round sets a list's choice once it is offered
      fields().forEach(function (f) {
        var mine = kept.filter(function (pair) { return pair[0] === f.name; }).map(function (pair) { return pair[1]; });
        if (f.type === 'radio' || f.type === 'checkbox') { f.checked = mine.indexOf(f.value) >= 0; } else if (mine.length) { f.value = mine[0]; }
      });
      update();
    }
  }
  var draftPage = 0;  // the page the draft was left on (a reload or a language switch goes back there)
  function draft() {
    try {
      var saved = JSON.parse(localStorage.getItem(DRAFT) || 'null');
      draftPage = saved && typeof saved.p === 'number' ? saved.p : 0;
      return saved && saved.v && Date.now() - saved.t < DRAFT_DAYS * 864e5 ? saved.v : null;
    } catch (e) {
      return null;
    }
  }
  window.addEventListener('pagehide', saveNow);

  // ---- Start: what only works with scripts appears, what is only for pages without goes.
  all('.refresh', form).forEach(function (b) { b.parentNode.removeChild(b); });
  all('.locate', form).forEach(function (b) {
    if (!navigator.geolocation) { return; }
    b.hidden = false;
    var fieldset = b.closest('[data-item]');
    var said = b.nextElementSibling;
    b.addEventListener('click', function () {
      said.textContent = say('正在获取位置…');
      navigator.geolocation.getCurrentPosition(function (where) {
        var code = fieldset.getAttribute('data-item');
        named(code + '.lat')[0].value = where.coords.latitude.toFixed(6);
        named(code + '.lon')[0].value = where.coords.longitude.toFixed(6);
        said.textContent = say('已获取位置（误差约{0}米）', Math.round(where.coords.accuracy));
        named(code + '.lon')[0].dispatchEvent(new Event('change', { bubbles: true }));
      }, function () {
        said.textContent = say('无法获取位置，请手动填写，或跳过此题');
      }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
    });
  });

  var kept = form.hasAttribute('data-returned') ? null : draft();
  if (kept) {
    restore(kept);
    var notice = document.createElement('div');
    notice.className = 'success restored';
    notice.setAttribute('role', 'status');
    var line = document.createElement('span');
    line.textContent = say('已恢复您上次未提交的回答。');
    var clear = button(say('清空'), 'small secondary');
    var close = button('×', 'small close');
    close.setAttribute('aria-label', say('关闭提示'));
    notice.appendChild(line);
    notice.appendChild(clear);
    notice.appendChild(close);
    form.parentNode.insertBefore(notice, form);
    clear.addEventListener('click', function () {
      try { localStorage.removeItem(DRAFT); } catch (e) { /* nothing kept */ }
      form.reset();
      all('.question.invalid', form).forEach(function (q) { mark(q, null); });
      update();
      notice.parentNode.removeChild(notice);
      if (pages.length) { show(0, true); }
    });
    close.addEventListener('click', function () { notice.parentNode.removeChild(notice); });
  }
  update();
  if (pages.length) {
    var first = form.querySelector('.question.invalid');
    show(first ? pageOf(first) : (kept ? draftPage : 0), false);
    var summary = document.getElementById('error-summary');
    if (summary) {
      summary.addEventListener('click', function (event) {
        var link = event.target.closest('a[href^="#"]');
        var target = link && document.getElementById(link.getAttribute('href').slice(1));
        if (!target) { return; }
        event.preventDefault();
        show(pageOf(target), false);
        focus(target);
      });
    }
  }
}());
