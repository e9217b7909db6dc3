/* SurveyExpr: evaluates the XLSForm expressions of a questionnaire (relevant, constraint,
 * choice_filter) in the browser, with the same results as forms/expressions.py (the module
 * docstring there gives the language and its type rules; tests/forms/expression_cases.json checks
 * both). The tree is Expr.to_dict(): ["str", s], ["num", x], ["ref", name], ["dot"], ["col", name],
 * ["neg", a], [op, a, b] for = != < <= > >= + - * div mod, ["and" | "or", a, b, ...],
 * ["fn", name, args...]; or a legacy skip rule {op: "=" | "!=" | "selected", item, value} /
 * {op: "and" | "or", args}. env: {answer(name), dot, column(name), today: 'YYYY-MM-DD'}.
 * Plain ES5, no eval: the server has already parsed and checked the expression.
 */
(function () {
  'use strict';
  var SPACE = /[ \t\r\n]+/;
  var NUMBER = /^[ \t\r\n]*(-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))[ \t\r\n]*$/;
  var DATE = /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/;
  var TIME = /^[0-9]{2}:[0-9]{2}(?::[0-9]{2})?$/;
  var patterns = {};

  function zeros(n) { return new Array(n + 1).join('0'); }
  function text(v) { return v === null || v === undefined ? '' : String(v); }

  function number(v) {
    if (typeof v === 'boolean') { return v ? 1 : 0; }
    if (typeof v === 'number') { return v; }
    var m = NUMBER.exec(v);
    return m ? parseFloat(m[1]) : NaN;
  }

  function string(v) {
    if (typeof v === 'boolean') { return v ? 'true' : 'false'; }
    if (typeof v !== 'number') { return v; }
    if (v !== v) { return 'NaN'; }
    if (v === Infinity || v === -Infinity) { return v > 0 ? 'Infinity' : '-Infinity'; }
    if (v === 0) { return '0'; }
    // The shortest digits (as Python's repr), written out without an exponent.
    var parts = String(Math.abs(v)).split('e'), mantissa = parts[0].split('.');
    var digits = mantissa[0] + (mantissa[1] || '');
    var point = mantissa[0].length + (parts[1] ? parseInt(parts[1], 10) : 0);
    var stripped = digits.replace(/^0+/, '');
    point -= digits.length - stripped.length;
    digits = stripped.replace(/0+$/, '');
    var out = point >= digits.length ? digits + zeros(point - digits.length)
      : point <= 0 ? '0.' + zeros(-point) + digits : digits.slice(0, point) + '.' + digits.slice(point);
    return v < 0 ? '-' + out : out;
  }

  function boolean(v) {
    if (typeof v === 'number') { return v === v && v !== 0; }
    return typeof v === 'boolean' ? v : v.length > 0;
  }

  function truncate(x) {
    if (x !== x || x === Infinity || x === -Infinity) { return x; }
    return x < 0 ? Math.ceil(x) : Math.floor(x);
  }

  function round(x, digits) {
    if (digits !== digits) { return NaN; }
    if (x !== x || x === Infinity || x === -Infinity) { return x; }
    var places = Math.max(-308, Math.min(308, truncate(digits))), scale = 1, i;
    for (i = 0; i < Math.abs(places); i++) { scale *= 10; }
    var y = places >= 0 ? x * scale : x / scale;
    if (y === Infinity || y === -Infinity) { return x; }
    var r = truncate(y);
    if (Math.abs(y - r) >= 0.5) { r += y > 0 ? 1 : -1; }
    return places >= 0 ? r / scale : r * scale;
  }

  function list(v) {
    return string(v).split(SPACE).filter(function (part) { return part !== ''; });
  }

  function codePoints(s) {
    var n = 0, i, c, d;
    for (i = 0; i < s.length; i++, n++) {
      c = s.charCodeAt(i);
      d = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (c >= 0xD800 && c <= 0xDBFF && d >= 0xDC00 && d <= 0xDFFF) { i++; }
    }
    return n;
  }

  function temporal(s) {
    if (DATE.test(s)) { return 'd' + s; }
    return TIME.test(s) ? 't' + (s.length === 8 ? s : s + ':00') : null;
  }

  function equals(a, b) {
    if (typeof a === 'boolean' || typeof b === 'boolean') { return boolean(a) === boolean(b); }
    if (typeof a === 'number' || typeof b === 'number') { return number(a) === number(b); }
    return a === b;
  }

  function relation(op, a, b) {
    var x = typeof a === 'string' && typeof b === 'string' ? temporal(a) : null;
    var y = x === null ? null : temporal(b);
    if (y === null || x.charAt(0) !== y.charAt(0)) { x = number(a); y = number(b); }
    return op === '<' ? x < y : op === '<=' ? x <= y : op === '>' ? x > y : x >= y;
  }

  function regex(value, pattern) {
    var re = patterns['p' + pattern];
    if (!re) { re = patterns['p' + pattern] = new RegExp(pattern); }
    return re.test(string(value).slice(0, 10000));
  }

  function today(env) {
    if (env.today) { return env.today; }
    var d = new Date(), m = d.getMonth() + 1, day = d.getDate();
    return d.getFullYear() + '-' + (m < 10 ? '0' : '') + m + '-' + (day < 10 ? '0' : '') + day;
  }

  function call(name, args, env) {
    var v = function (i) { return evaluate(args[i], env); };
    switch (name) {
      case 'if': return boolean(v(0)) ? v(1) : v(2);
      case 'coalesce': var first = v(0); return string(first) !== '' ? first : v(1);
      case 'regex': return regex(v(0), args[1][1]);
      case 'selected': return list(v(0)).indexOf(string(v(1))) >= 0;
      case 'count-selected': return list(v(0)).length;
      case 'string-length': return codePoints(string(v(0)));
      case 'today': return today(env);
      case 'int': return truncate(number(v(0)));
      case 'round': return round(number(v(0)), args.length > 1 ? number(v(1)) : 0);
      case 'not': return !boolean(v(0));
      case 'true': return true;
      case 'false': return false;
      case 'number': return number(v(0));
      case 'string': return string(v(0));
      case 'boolean': return boolean(v(0));
      case 'contains': return string(v(0)).indexOf(string(v(1))) >= 0;
      case 'starts-with': return string(v(0)).indexOf(string(v(1))) === 0;
      case 'concat': return args.map(function (arg) { return string(evaluate(arg, env)); }).join('');
    }
    throw new Error('SurveyExpr: unknown function ' + name);
  }

  function legacy(rule, env) {
    if (rule.op === 'and') { return rule.args.every(function (arg) { return holds(arg, env); }); }
    if (rule.op === 'or') { return rule.args.some(function (arg) { return holds(arg, env); }); }
    var given = text(env.answer(rule.item));
    if (rule.op === 'selected') { return list(given).indexOf(rule.value) >= 0; }
    return rule.op === '!=' ? given !== rule.value : given === rule.value;
  }

  function evaluate(node, env) {
    if (!Array.isArray(node)) { return legacy(node, env); }
    var kind = node[0], i;
    switch (kind) {
      case 'str': case 'num': return node[1];
      case 'ref': return text(env.answer(node[1]));
      case 'dot': return text(env.dot);
      case 'col': return text(env.column ? env.column(node[1]) : null);
      case 'neg': return -number(evaluate(node[1], env));
      case 'fn': return call(node[1], node.slice(2), env);
      case 'or': case 'and':
        for (i = 1; i < node.length; i++) {
          if (boolean(evaluate(node[i], env)) === (kind === 'or')) { return kind === 'or'; }
        }
        return kind === 'and';
    }
    var a = evaluate(node[1], env), b = evaluate(node[2], env);
    switch (kind) {
      case '=': return equals(a, b);
      case '!=': return !equals(a, b);
      case '<': case '<=': case '>': case '>=': return relation(kind, a, b);
      case '+': return number(a) + number(b);
      case '-': return number(a) - number(b);
      case '*': return number(a) * number(b);
      case 'div': return number(a) / number(b);
      case 'mod': return number(a) % number(b);
    }
    throw new Error('SurveyExpr: unknown node ' + kind);
  }

  function holds(node, env) { return boolean(evaluate(node, env)); }

  window.SurveyExpr = { evaluate: evaluate, holds: holds, string: string, number: number, boolean: boolean };
}());
