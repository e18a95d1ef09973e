// The person's view of their Patientkontrakt (see src/api/portal.rs). Plain JavaScript,
// no build step: it calls the gateway's own FHIR API with the person's token, kept in
// this tab's sessionStorage and never in the address.
'use strict';

(() => {
  const KEY = 'pkgw-portal-token';
  const PERSON = 'pkgw-portal-person';
  const LAUNCH = 'pkgw-portal-launch';
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

  class Refused extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }

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
      throw new Refused(`Det gick inte: ${why.join(' ') || `svar ${response.status}`}`,
        response.status);
    }
    return json;
  }

  function logout() {
    sessionStorage.removeItem(KEY);
    sessionStorage.removeItem(PERSON);
    $('#kontrakt').replaceChildren();
    $('#kontrakt').hidden = true;
    $('#inloggning').hidden = false;
    $('#logga-ut').hidden = true;
  }

  async function load() {
    const person = sessionStorage.getItem(PERSON) || (claims(token()) || {}).patient;
    if (!person) {
      logout();
      fail('Nyckeln gäller inte en person. Logga in med din egen nyckel.', $('#nyckel'));
      return;
    }
    // By POST: the personnummer goes in the body, not in an address that is logged.
    // A person without a contract in force has no plan (404): they may start one.
    const bundle = await api('POST', '/CarePlan/$coordinated-plan', {
      resourceType: 'Parameters', parameter: [{ name: 'patient', valueString: person }],
    }).catch((e) => {
      if (e.status === 404) return {};
      throw e;
    });
    // The plan holds the agreed times ahead; the times still to answer are searched for
    // (also by POST, for the same reason).
    const search = new URLSearchParams({
      patient: person, status: 'proposed,booked', date: `ge${new Date().toISOString()}`, _count: '100',
    });
    const form = { 'Content-Type': 'application/x-www-form-urlencoded' };
    const times = await api('POST', '/Appointment/_search', search.toString(), form);
    // A contract the person started is a draft until the unit completes it.
    const drafts = await api('POST', '/CarePlan/_search',
      new URLSearchParams({ patient: person, status: 'draft', _include: 'CarePlan:goal' }).toString(),
      form);
    const resources = [bundle, times, drafts]
      .flatMap((b) => (b.entry || []).map((e) => e.resource))
      .filter((r) => r && r.resourceType !== 'OperationOutcome');
    const unique = new Map(resources.map((r) => [`${r.resourceType}/${r.id}`, r]));
    questionnaire = questionnaire || await api('GET', '/Questionnaire/sju-fragor-patient');
    show([...unique.values()], person);
  }

  let questionnaire = null;

  function show(resources, person) {
    const container = $('#kontrakt');
    container.replaceChildren();
    const plans = resources.filter((r) => r.resourceType === 'CarePlan');
    if (plans.length === 0) {
      const start = $('#starta').content.cloneNode(true);
      $('.starta', start).addEventListener('submit', (event) => begin(event, person));
      container.append(start);
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
      } else if (plan.status === 'draft') {
        const waiting = document.createElement('p');
        waiting.textContent = 'Det här är ett utkast. Din vårdenhet gör det färdigt tillsammans med dig.';
        article.prepend(waiting);
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
    goals(root, plan, resources);
    questions(root, plan);
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

  // What matters to the person: each Goal theirs to change, and more to add (a new Goal
  // goes in one transaction with the CarePlan that refers to it).
  function goals(root, plan, resources) {
    const list = $('.mal', root);
    const refs = (plan.goal || []).map((g) => g.reference);
    for (const goal of resources.filter((r) => r.resourceType === 'Goal'
      && refs.includes(`Goal/${r.id}`))) {
      const item = document.createElement('li');
      const text = goal.description.text;
      const shown = document.createElement('span');
      shown.textContent = `${text} `;
      const edit = document.createElement('form');
      edit.hidden = true;
      edit.noValidate = true;
      const label = document.createElement('label');
      label.textContent = `Ändra "${text}"`;
      const input = document.createElement('input');
      input.name = 'mal';
      input.value = text;
      label.append(input);
      const save = document.createElement('button');
      save.type = 'submit';
      save.textContent = 'Spara';
      edit.append(label, save);
      edit.addEventListener('submit', (event) => {
        event.preventDefault();
        const changed = input.value.trim();
        if (!changed) return fail('Skriv vad som är viktigt för dig.', input);
        act(save, 'Sparat.', () => api('PUT', `/Goal/${goal.id}`,
          { ...goal, description: { text: changed } }, ifMatch(goal)));
      });
      item.append(shown, button('Ändra', null, () => {
        edit.hidden = false;
        input.focus();
      }, 'andra'), edit);
      list.append(item);
    }
    $('.nytt-mal', root).addEventListener('submit', (event) => {
      event.preventDefault();
      const form = event.target;
      const what = form.mal.value.trim();
      if (!what) return fail('Skriv vad som är viktigt för dig.', form.mal);
      const id = `urn:uuid:${crypto.randomUUID()}`;
      const changed = { ...plan, goal: [...(plan.goal || []), { reference: id }] };
      act(event.submitter || form, `Tillagt: ${what}.`, () => api('POST', '', {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          { fullUrl: id, resource: newGoal(what, plan.subject), request: { method: 'POST', url: 'Goal' } },
          { resource: changed,
            request: { method: 'PUT', url: `CarePlan/${plan.id}`, ifMatch: `W/"${plan.meta.versionId}"` } },
        ],
      }));
    });
  }

  const newGoal = (what, person) => ({
    resourceType: 'Goal', lifecycleStatus: 'active', description: { text: what },
    subject: person, expressedBy: person,
  });

  // 7 frågor, from the questionnaire the gateway serves.
  function questions(root, plan) {
    const form = $('.sju-fragor', root);
    const place = $('.fragor', form);
    for (const item of (questionnaire && questionnaire.item) || []) {
      const set = document.createElement('fieldset');
      const legend = document.createElement('legend');
      legend.textContent = `${item.linkId}. ${item.text}`;
      set.append(legend);
      for (const option of item.answerOption || []) {
        const label = document.createElement('label');
        label.className = 'val';
        const radio = document.createElement('input');
        radio.type = 'radio';
        radio.name = `fraga-${item.linkId}`;
        radio.value = option.valueCoding.code;
        label.append(radio, ` ${option.valueCoding.display}`);
        set.append(label);
      }
      place.append(set);
    }
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const items = [];
      for (const item of questionnaire.item) {
        const chosen = form.querySelector(`input[name="fraga-${item.linkId}"]:checked`);
        if (!chosen) {
          return fail(`Svara på fråga ${item.linkId}.`,
            form.querySelector(`input[name="fraga-${item.linkId}"]`));
        }
        const option = item.answerOption.find((o) => o.valueCoding.code === chosen.value);
        items.push({ linkId: item.linkId, answer: [{ valueCoding: option.valueCoding }] });
      }
      act(event.submitter || form, 'Tack för dina svar!', () => api('POST', '/QuestionnaireResponse', {
        resourceType: 'QuestionnaireResponse',
        questionnaire: questionnaire.url,
        status: 'completed',
        basedOn: [{ reference: `CarePlan/${plan.id}` }],
        item: items,
      }));
    });
  }

  // The person's identifier: a personnummer or samordningsnummer (birth day + 60) is
  // its own; any other (a region's reservnummer) is asked of the gateway, by POST.
  async function identifier(person) {
    if (/^\d{12}$/.test(person)) {
      const day = Number(person.slice(6, 8));
      return { system: day > 60 ? profile.samordningsnummer : profile.personnummer, value: person };
    }
    const found = await api('POST', '/Patient/_search', new URLSearchParams({ _id: person })
      .toString(), { 'Content-Type': 'application/x-www-form-urlencoded' });
    const patient = ((found.entry || [])[0] || {}).resource;
    if (!patient) throw new Refused('Det gick inte att hitta dig.');
    return patient.identifier[0];
  }

  // A contract the person starts: a draft, initiated by them, with what matters to them.
  async function begin(event, person) {
    event.preventDefault();
    const form = event.target;
    const what = form.viktigt.value.trim();
    if (!what) return fail('Skriv vad som är viktigt för dig.', form.viktigt);
    act(event.submitter || form, 'Ditt patientkontrakt är påbörjat.', async () => {
      const subject = { type: 'Patient', identifier: await identifier(person) };
      const [system, code, display] = profile.category.split('|');
      const [planId, goalId] = [crypto.randomUUID(), crypto.randomUUID()].map((u) => `urn:uuid:${u}`);
      return api('POST', '', {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          { fullUrl: goalId, resource: newGoal(what, subject), request: { method: 'POST', url: 'Goal' } },
          { fullUrl: planId,
            resource: {
              resourceType: 'CarePlan',
              extension: [{ url: profile.initiatedBy, valueCode: 'patient' }],
              status: 'draft',
              intent: 'plan',
              category: [{ coding: [{ system, code, display }] }],
              title: 'Patientkontrakt',
              subject,
              goal: [{ reference: goalId }],
            },
            request: { method: 'POST', url: 'CarePlan' } },
        ],
      });
    });
  }

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
    if (describedBy) b.setAttribute('aria-describedby', describedBy);
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
    sessionStorage.removeItem(PERSON);
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

  // SMART standalone patient launch: authorization code with PKCE at the region's
  // identity provider, back to this page, the token from its token endpoint.
  const login = profile.authorize
    ? { authorize: profile.authorize, token: profile.tokenUrl, client: profile.clientId }
    : null;
  const here = `${window.location.origin}/portal`;
  const base64url = (bytes) => btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

  async function startLogin() {
    const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
    const state = base64url(crypto.getRandomValues(new Uint8Array(16)));
    const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
    sessionStorage.setItem(LAUNCH, JSON.stringify({ verifier, state }));
    const query = new URLSearchParams({
      response_type: 'code',
      client_id: login.client,
      redirect_uri: here,
      scope: 'launch/patient openid fhirUser patient/*.cruds',
      state,
      aud: `${window.location.origin}/fhir`,
      code_challenge: base64url(new Uint8Array(digest)),
      code_challenge_method: 'S256',
    });
    window.location.assign(`${login.authorize}?${query}`);
  }

  // Back from the identity provider: whether this was such a return.
  async function finishLogin() {
    const params = new URLSearchParams(window.location.search);
    if (!login || (!params.has('code') && !params.has('error'))) return false;
    // The code and state leave the address (and the history) at once.
    window.history.replaceState(null, '', '/portal');
    const launch = JSON.parse(sessionStorage.getItem(LAUNCH) || 'null');
    sessionStorage.removeItem(LAUNCH);
    if (params.has('error') || !launch || params.get('state') !== launch.state) {
      fail('Inloggningen avbröts eller kunde inte slutföras. Försök igen.');
      return true;
    }
    const response = await fetch(login.token, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: params.get('code'),
        redirect_uri: here,
        client_id: login.client,
        code_verifier: launch.verifier,
      }),
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok || !answer.access_token) {
      fail('Inloggningen kunde inte slutföras. Försök igen.');
      return true;
    }
    sessionStorage.setItem(KEY, answer.access_token);
    if (answer.patient) sessionStorage.setItem(PERSON, answer.patient);
    await load();
    say('Du är inloggad.');
    return true;
  }

  if (login) {
    $('#e-legitimation').hidden = false;
    $('#logga-in-idp').addEventListener('click', () => startLogin()
      .catch((e) => fail(`Det gick inte att logga in: ${e.message}`)));
  }
  finishLogin()
    .then((returned) => (!returned && token() ? load() : undefined))
    .catch((e) => fail(e.message));
})();
