// The person's view of their Patientkontrakt (see src/api/portal.rs). Plain JavaScript,
// no build step: it calls the gateway's own FHIR API with the person's token, kept in
// this tab's sessionStorage and never in the address.
'use strict';

(() => {
  const KEY = 'pkgw-portal-token';
  const $ = (selector, root = document) => root.querySelector(selector);
  const profile = document.body.dataset;
  const when = new Intl.DateTimeFormat('sv-SE', {
    timeZone: 'Europe/Stockholm', weekday: 'long', day: 'numeric', month: 'long',
    year: 'numeric', hour: '2-digit', minute: '2-digit',
  });

  const token = () => sessionStorage.getItem(KEY);

  // The token's claims, read (not checked: the gateway checks it) for the person's id.
  function claims(jwt) {
    const part = (jwt || '').split('.')[1];
    if (!part) return null;
    try {
      const base64 = part.replace(/-/g, '+').replace(/_/g, '/');
      const bytes = Uint8Array.from(atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, '=')),
        (c) => c.charCodeAt(0));
      return JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      return null;
    }
  }

  function say(text) {
    $('#fel').textContent = '';
    $('#meddelande').textContent = text;
  }

  function fail(text, field) {
    $('#meddelande').textContent = '';
    $('#fel').textContent = text;
    if (field) {
      field.setAttribute('aria-invalid', 'true');
      field.focus();
    }
  }

  class Refused extends Error {}

  async function api(method, path, body, headers = {}) {
    const sent = { Authorization: `Bearer ${token()}`, Accept: 'application/fhir+json', ...headers };
    if (body !== undefined && !sent['Content-Type']) sent['Content-Type'] = 'application/fhir+json';
    const encoded = typeof body === 'string' ? body : JSON.stringify(body);
    const response = await fetch(`/fhir${path}`, {
      method, headers: sent, body: body === undefined ? undefined : encoded,
    });
    const text = await response.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { json = null; }
    if (response.status === 401) {
      logout();
      throw new Refused('Din inloggning gäller inte längre. Logga in igen.');
    }
    if (!response.ok) {
      const why = (json && json.issue ? json.issue : []).map((i) => i.diagnostics).filter(Boolean);
      throw new Refused(`Det gick inte: ${why.join(' ') || `svar ${response.status}`}`);
    }
    return json;
  }

  function logout() {
    sessionStorage.removeItem(KEY);
    $('#kontrakt').replaceChildren();
    $('#kontrakt').hidden = true;
    $('#inloggning').hidden = false;
    $('#logga-ut').hidden = true;
  }

  async function load() {
    const person = (claims(token()) || {}).patient;
    if (!person) {
      logout();
      fail('Nyckeln gäller inte en person. Logga in med din egen nyckel.', $('#nyckel'));
      return;
    }
    // By POST: the personnummer goes in the body, not in an address that is logged.
    const bundle = await api('POST', '/CarePlan/$coordinated-plan', {
      resourceType: 'Parameters', parameter: [{ name: 'patient', valueString: person }],
    });
    // The plan holds the agreed times ahead; the times still to answer are searched for
    // (also by POST, for the same reason).
    const search = new URLSearchParams({
      patient: person, status: 'proposed,booked', date: `ge${new Date().toISOString()}`, _count: '100',
    });
    const times = await api('POST', '/Appointment/_search', search.toString(),
      { 'Content-Type': 'application/x-www-form-urlencoded' });
    const resources = [bundle, times].flatMap((b) => (b.entry || []).map((e) => e.resource))
      .filter(Boolean);
    const unique = new Map(resources.map((r) => [`${r.resourceType}/${r.id}`, r]));
    show([...unique.values()]);
  }

  function show(resources) {
    const container = $('#kontrakt');
    container.replaceChildren();
    const plans = resources.filter((r) => r.resourceType === 'CarePlan');
    if (plans.length === 0) {
      const none = document.createElement('h1');
      none.textContent = 'Du har inget patientkontrakt här ännu';
      container.append(none);
    }
    for (const plan of plans) {
      const article = document.createElement('article');
      article.className = 'kontraktstext';
      // The narrative is the gateway's own, written from the contract (never a sender's).
      const div = plan.text && plan.text.div;
      if (div) {
        const xhtml = new DOMParser().parseFromString(div, 'application/xhtml+xml');
        if (!xhtml.querySelector('parsererror')) {
          article.append(document.importNode(xhtml.documentElement, true));
        }
      }
      const actions = $('#atgarder').content.cloneNode(true);
      if (plan.status === 'active') {
        wire(actions, plan, resources);
        article.append(actions);
      }
      container.append(article);
    }
    $('#inloggning').hidden = true;
    container.hidden = false;
    $('#logga-ut').hidden = false;
  }

  // Runs an action, says how it went, and shows the contract as it now is.
  async function act(button, done, action) {
    button.disabled = true;
    try {
      await action();
      await load();
      say(done);
    } catch (e) {
      fail(e instanceof Refused ? e.message : `Det gick inte: ${e.message}`);
    } finally {
      button.disabled = false;
    }
  }

  const ifMatch = (resource) => ({ 'If-Match': `W/"${resource.meta.versionId}"` });

  function wire(root, plan, resources) {
    times(root, plan, resources);
    $('.eget-atagande', root).addEventListener('submit', (event) => {
      event.preventDefault();
      const form = event.target;
      const what = form.vad.value.trim();
      const where = form.vart.value.trim();
      if (!what) return fail('Skriv vad du gör.', form.vad);
      if (form.situation.value === 'warning-sign' && !where) {
        return fail('Skriv vart du vänder dig om varningstecknet kommer.', form.vart);
      }
      const [system, code, display] = profile[camel(form.situation.value)].split('|');
      const activity = {
        id: `egen-${crypto.randomUUID().slice(0, 8)}`,
        detail: {
          code: { coding: [{ system, code, display }] },
          status: 'in-progress',
          description: what,
          performer: [plan.subject],
        },
      };
      if (form.nar.value.trim()) activity.detail.scheduledString = form.nar.value.trim();
      if (where) activity.detail.extension = [{ url: profile.whereToTurn, valueString: where }];
      const patch = plan.activity
        ? [{ op: 'add', path: '/activity/-', value: activity }]
        : [{ op: 'add', path: '/activity', value: [activity] }];
      act(event.submitter || form, `Tillagt: ${what}.`, () => api('PATCH', `/CarePlan/${plan.id}`,
        patch, { 'Content-Type': 'application/json-patch+json', ...ifMatch(plan) }));
    });
    $('.kontakt', root).addEventListener('submit', (event) => {
      event.preventDefault();
      const form = event.target;
      const message = form.meddelande.value.trim();
      if (!message) return fail('Skriv ditt meddelande.', form.meddelande);
      act(event.submitter || form, 'Skickat. Din fasta vårdkontakt hör av sig.', () => api('POST',
        '/CommunicationRequest', {
          resourceType: 'CommunicationRequest',
          status: 'active',
          about: [{ reference: `CarePlan/${plan.id}` }],
          reasonCode: [{ coding: [{ system: profile.contactReason, code: form.orsak.value }] }],
          payload: [{ contentString: message }],
        }));
    });
    const agree = $('.overens', root);
    agree.addEventListener('click', () => act(agree, 'Tack! Du har bekräftat att ni är överens.',
      () => api('POST', `/CarePlan/${plan.id}/$confirm`, undefined, ifMatch(plan))));
  }

  const camel = (name) => name.replace(/-(.)/g, (_, c) => c.toUpperCase());

  // The agreed times ahead, each with the person's answer.
  function times(root, plan, resources) {
    const list = $('.tidlista', root);
    const ahead = resources.filter((r) => r.resourceType === 'Appointment'
      && (r.supportingInformation || []).some((s) => s.reference === `CarePlan/${plan.id}`)
      && ['proposed', 'booked'].includes(r.status) && new Date(r.start) > new Date())
      .sort((a, b) => new Date(a.start) - new Date(b.start));
    $('.inga-tider', root).hidden = ahead.length > 0;
    for (const time of ahead) {
      const mine = (time.participant || [])[0] || {};
      const item = document.createElement('li');
      const about = document.createElement('p');
      about.id = `tid-${time.id}`;
      about.textContent = `${when.format(new Date(time.start))}: ${time.description || 'Besök'}. `
        + state(time.status, mine.status);
      item.append(about);
      if (mine.status !== 'accepted') {
        item.append(button('Jag kan komma', about.id, (b) => act(b, 'Du har tackat ja till tiden.',
          () => answer(time, 'accepted'))));
      }
      if (mine.status !== 'declined') {
        const other = proposal(time, about.id);
        item.append(button('Jag kan inte', about.id, () => {
          other.hidden = false;
          $('input', other).focus();
        }, 'andra'), other);
      }
      list.append(item);
    }
  }

  function state(status, mine) {
    if (status === 'booked') return 'Bokad: ni är överens om tiden.';
    if (mine === 'accepted') return 'Du har tackat ja; vården har inte svarat än.';
    if (mine === 'declined') return 'Du har tackat nej.';
    return 'Föreslagen: kan du komma?';
  }

  function button(text, describedBy, onClick, className) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = text;
    b.setAttribute('aria-describedby', describedBy);
    if (className) b.className = className;
    b.addEventListener('click', () => onClick(b));
    return b;
  }

  // Declining, with another time proposed if the person wants to.
  function proposal(time, describedBy) {
    const form = document.createElement('form');
    form.hidden = true;
    form.noValidate = true;
    form.innerHTML = '<fieldset><legend>Tacka nej, och föreslå gärna en annan tid</legend>'
      + '<label>Annan tid (frivilligt) <input type="datetime-local" name="start"></label>'
      + '<button type="submit">Tacka nej</button></fieldset>';
    $('fieldset', form).setAttribute('aria-describedby', describedBy);
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const value = form.start.value;
      const minutes = (new Date(time.end) - new Date(time.start)) / 60000 || 30;
      const start = value ? new Date(value) : null;
      if (start && !(start > new Date())) return fail('Föreslå en tid som inte har varit.', form.start);
      const end = start && new Date(start.getTime() + minutes * 60000);
      act(event.submitter || form, 'Du har tackat nej till tiden.',
        () => answer(time, 'declined', start, end));
    });
    return form;
  }

  function answer(time, status, start, end) {
    const body = {
      resourceType: 'AppointmentResponse',
      appointment: { reference: `Appointment/${time.id}` },
      participantStatus: status,
    };
    if (start) {
      body.start = start.toISOString();
      body.end = end.toISOString();
    }
    return api('POST', '/AppointmentResponse', body);
  }

  document.addEventListener('input', (event) => event.target.removeAttribute('aria-invalid'));

  $('#inloggning-formular').addEventListener('submit', async (event) => {
    event.preventDefault();
    const given = $('#nyckel').value.trim();
    if (!given) return fail('Klistra in din inloggningsnyckel.', $('#nyckel'));
    sessionStorage.setItem(KEY, given);
    $('#nyckel').value = '';
    try {
      await load();
      say('Du är inloggad.');
      $('#innehall').focus();
    } catch (e) {
      logout();
      fail(e instanceof Refused ? e.message : `Det gick inte att logga in: ${e.message}`, $('#nyckel'));
    }
  });

  $('#logga-ut').addEventListener('click', () => {
    logout();
    say('Du är utloggad.');
  });

  if (token()) {
    load().catch((e) => fail(e.message));
  }
})();
