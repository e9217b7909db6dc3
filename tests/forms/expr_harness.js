// Runs survey/static/expr.js in a fake window for tests/forms/test_expressions.py: reads a JSON list of
// {tree, answers, dot, columns, today} on stdin, writes one {type, string, boolean, negzero} (or
// {error}) per case as a JSON list on stdout.
'use strict';
var fs = require('fs');
var path = require('path');
var vm = require('vm');

var sandbox = { window: {} };
vm.runInNewContext(fs.readFileSync(path.join(__dirname, '..', '..', 'survey', 'static', 'expr.js'), 'utf8'), sandbox);
var SurveyExpr = sandbox.window.SurveyExpr;

function has(object, key) { return object !== null && Object.prototype.hasOwnProperty.call(object, key); }

var cases = JSON.parse(fs.readFileSync(0, 'utf8'));
var results = cases.map(function (c) {
  var env = {
    answer: function (name) { return has(c.answers, name) ? c.answers[name] : null; },
    dot: c.dot,
    column: function (name) { return has(c.columns, name) ? c.columns[name] : null; },
    today: c.today === null ? undefined : c.today,
  };
  try {
    var value = SurveyExpr.evaluate(c.tree, env);
    return {
      type: typeof value, string: SurveyExpr.string(value), boolean: SurveyExpr.boolean(value),
      holds: SurveyExpr.holds(c.tree, env), negzero: Object.is(value, -0),
    };
  } catch (error) {
    return { error: String(error) };
  }
});
process.stdout.write(JSON.stringify(results));
