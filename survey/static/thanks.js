// The thank-you page (served at the questionnaire's own address): the draft form.js kept is no longer needed.
try { localStorage.removeItem('survey-draft:' + location.pathname); } catch (e) { /* no storage: nothing kept */ }
