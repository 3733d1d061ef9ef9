// The store counter page (docs/counter.md): staff sign-in, find a member by
// scan or phone, their summary, redeem a reward, top up stored value, the
// receipt. Every call goes to this terminal's /counter/api/ with the
// session cookie and the CSRF token; writes carry an Idempotency-Key made
// once per action, so a retry after a lost answer is never counted twice.
import {lang, problemText, setLang, t} from './i18n.js';

const $ = (id) => document.getElementById(id);
const state = {csrf: '', staff: null, member: null, status: null};

// An element with attributes and children (text or elements); never HTML
// from data, so a member's name cannot inject markup.
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

// Money in minor units as yuan with two decimals, in integers throughout.
export function money(minor, currency = 'CNY') {
  const n = BigInt(minor);
  const neg = n < 0n;
  const a = neg ? -n : n;
  const text = (a / 100n).toString() + '.' + (a % 100n).toString().padStart(2, '0');
  return (neg ? '-' : '') + (currency === 'CNY' ? '¥' : currency + ' ') + text;
}

// "100", "100.5", "100.50" as minor units; null when it is not an amount.
export function parseYuan(text) {
  const m = /^\s*(\d{1,7})(?:\.(\d{1,2}))?\s*$/.exec(text);
  if (!m) return null;
  return Number(m[1]) * 100 + Number((m[2] || '0').padEnd(2, '0'));
}

function newKey() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return 'counter-' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

async function api(method, path, body, key) {
  const headers = {Accept: 'application/json'};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET') headers['X-CSRF-Token'] = state.csrf;
  if (key) headers['Idempotency-Key'] = key;
  let res;
  try {
    res = await fetch('/counter/api' + path, {
      method, headers, credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    return {ok: false, status: 0, data: null};
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (res.status === 401 && path !== '/session') signedOut(t('signed_out'));
  return {ok: res.ok, status: res.status, data};
}

// --- sign-in -------------------------------------------------------------

function showDesk() {
  loadActivities();
  $('signin').hidden = true;
  $('desk').hidden = false;
  $('signout').hidden = false;
  $('who').textContent = state.staff.name + ' (' + t(state.staff.role) + ')';
  refreshStatus();
  $('find').focus();
}

function signedOut(message) {
  state.csrf = '';
  state.staff = null;
  state.member = null;
  $('receipt-found').replaceChildren();
  $('desk').hidden = true;
  $('member').hidden = true;
  $('actions').hidden = true;
  $('signin').hidden = false;
  $('signout').hidden = true;
  $('who').textContent = '';
  $('signin-error').textContent = message || '';
  $('staff-id').focus();
}

async function signIn(ev) {
  ev.preventDefault();
  const button = ev.submitter || $('signin-form').querySelector('button');
  button.disabled = true;
  const r = await api('POST', '/session', {staff_id: $('staff-id').value.trim(), pin: $('pin').value});
  button.disabled = false;
  $('pin').value = '';
  if (!r.ok) {
    $('signin-error').textContent = problemText(r.data);
    $('pin').focus();
    return;
  }
  state.csrf = r.data.csrf;
  state.staff = r.data.staff;
  $('signin-error').textContent = '';
  showDesk();
}

async function signOut() {
  await api('DELETE', '/session');
  signedOut('');
}

// --- the network banner --------------------------------------------------

async function refreshStatus() {
  if (!state.staff) return;
  const r = await api('GET', '/v1/status');
  const banner = $('banner');
  if (!r.ok) {
    banner.className = 'banner bad';
    banner.textContent = problemText(r.data);
    return;
  }
  const s = r.data;
  state.status = s;
  $('where').textContent = s.store_id + ' / ' + s.terminal_id;
  const pending = s.outbox && s.outbox.depth ? ' · ' + t('pending', {n: s.outbox.depth}) : '';
  if (s.hq_refuses_terminal) {
    banner.className = 'banner bad';
    banner.textContent = t('refused') + pending;
  } else if (!s.online) {
    banner.className = 'banner warn';
    banner.textContent = t('offline') + pending;
  } else {
    banner.className = 'banner ok';
    banner.textContent = t('online') + pending;
  }
}

// --- find and show a member ----------------------------------------------

async function find(ev) {
  ev.preventDefault();
  const text = $('find').value.trim();
  if (!text) return;
  // A phone number is digits (or +digits) of phone length; cards are 16
  // digits and app codes are longer.
  const phone = /^\+?\d{6,15}$/.test(text) && text.length !== 16;
  const r = await api('POST', '/v1/members/scan', phone ? {phone: text} : {code: text});
  $('find').value = '';
  if (!r.ok) {
    $('find-error').textContent = problemText(r.data);
    $('member').hidden = true;
    $('actions').hidden = true;
    state.member = null;
    $('find').focus();
    return;
  }
  $('find-error').textContent = '';
  state.member = r.data;
  renderMember();
  await renderRewards();
  $('member').focus();
}

async function reloadMember() {
  const r = await api('GET', '/v1/members/' + encodeURIComponent(state.member.member_id));
  if (r.ok) {
    state.member = r.data;
    renderMember();
    await renderRewards();
  }
}

function fact(label, ...value) {
  return h('div', {class: 'fact'}, h('dt', {}, label), h('dd', {}, ...value));
}

function renderMember() {
  const m = state.member;
  const sec = $('member');
  sec.replaceChildren();
  sec.hidden = false;
  $('actions').hidden = m.blocked;
  if (m.blocked) sec.append(h('p', {class: 'blocked', role: 'alert'}, t('blocked')));
  sec.append(h('h2', {id: 'member-name'}, m.name || m.member_id));
  const facts = h('dl', {class: 'facts'});
  facts.append(fact(t('phone'), m.phone || t('none')));
  if (m.card_number) facts.append(fact(t('card'), m.card_number));
  const tier = [m.tier ? m.tier.name : ''];
  if (m.next_tier) {
    const g = m.next_tier.goals[0];
    tier.push(h('span', {class: 'sub'}, ' · ' + t('next_tier', {name: m.next_tier.name}) + ' '),
        g ? h('progress', {max: String(g.target), value: String(Math.min(g.current, g.target)),
          'aria-label': t('next_tier', {name: m.next_tier.name})}) : null,
        g ? h('span', {class: 'sub'}, ' ' + g.current + '/' + g.target) : null);
  }
  facts.append(fact(t('tier'), ...tier));
  const p = m.points;
  const pts = [h('strong', {class: 'big'}, String(p.available))];
  if (p.pending_sync) pts.push(h('span', {class: 'sub'}, ' ' + t('pending_sync', {n: p.pending_sync})));
  for (const e of p.expiring.slice(0, 2))
    pts.push(h('div', {class: 'sub'}, t('expiring', {points: e.points, date: e.expires_on})));
  facts.append(fact(t('points'), ...pts));
  if (m.offline_allowance)
    facts.append(fact(t('offline_short'), h('strong', {class: 'warn-text'},
        t('offline_allowance', {n: m.offline_allowance.points_left_today}))));
  if (p.debt) facts.append(fact(t('debt'), h('strong', {class: 'warn-text'}, String(p.debt))));
  const sv = m.stored_value;
  facts.append(fact(t('stored_value'), h('strong', {}, money(sv.base + sv.bonus, sv.currency)),
      h('span', {class: 'sub'}, ' ' + t('base_bonus', {base: money(sv.base, sv.currency), bonus: money(sv.bonus, sv.currency)}))));
  if (m.stamps.length)
    facts.append(fact(t('stamps'), ...m.stamps.map((s) => h('div', {}, s.name + ' ' + s.stamps + '/' + s.required))));
  if (m.passes.length)
    facts.append(fact(t('passes'), ...m.passes.map((s) => h('div', {}, s.pass + ' ' + s.valid_from + ' – ' + s.valid_to))));
  facts.append(fact(t('vouchers'), ...(m.vouchers.length ? m.vouchers.map((v) =>
    h('div', {}, v.name + ' ', h('code', {}, v.code), v.expires_on ? h('span', {class: 'sub'}, ' ' + v.expires_on) : null)) : [t('none')])));
  if (m.hq_flags && m.hq_flags.length)
    facts.append(fact(t('flags'), ...m.hq_flags.map((f) => h('div', {class: 'warn-text'}, f.kind + ': ' + f.detail))));
  sec.append(facts);
}

async function renderRewards() {
  const list = $('rewards');
  list.replaceChildren();
  const r = await api('GET', '/v1/rewards');
  if (!r.ok) {
    $('action-error').textContent = problemText(r.data);
    return;
  }
  for (const rw of r.data.rewards) {
    const out = rw.stock !== null && rw.stock <= 0;
    const allowance = state.member.offline_allowance;
    const enough = state.member.points.available >= rw.points &&
      (!allowance || allowance.points_left_today >= rw.points);
    const usable = rw.available_today && !out && enough;
    const notes = [rw.stock === null ? t('no_stock_limit') : t('stock_left', {n: rw.stock})];
    if (!rw.available_today) notes.push(t('not_today'));
    if (rw.min_tier) notes.push(t('min_tier', {tier: rw.min_tier}));
    list.append(h('li', {class: 'reward' + (usable ? '' : ' dim')},
        h('div', {}, h('strong', {}, rw.name), h('div', {class: 'sub'}, rw.points + ' ' + t('points') +
          (rw.cash ? ' + ' + money(rw.cash) : '') + ' · ' + notes.join(' · '))),
        h('button', {type: 'button', class: 'primary', 'data-reward': rw.reward,
          onclick: () => redeem(rw)}, t('redeem_it'))));
  }
}

// --- actions ---------------------------------------------------------------

// Asks the clerk; resolves true on Confirm.
function confirmAction(text) {
  return new Promise((resolve) => {
    const d = $('confirm');
    $('confirm-text').textContent = text;
    const done = (yes) => {
      d.close();
      $('confirm-yes').onclick = $('confirm-no').onclick = null;
      resolve(yes);
    };
    $('confirm-yes').onclick = () => done(true);
    $('confirm-no').onclick = () => done(false);
    d.oncancel = () => done(false);
    d.showModal();
    $('confirm-yes').focus();
  });
}

// Sends a write with one key for this action: a retry after a network
// error reuses it, so the terminal records it once.
async function write(path, body) {
  const key = newKey();
  let r = await api('POST', path, body, key);
  if (r.status === 0) r = await api('POST', path, body, key);
  return r;
}

// After a write: its refusal in `errorId`'s line, or the receipt, and the
// member's card and the banner brought up to date. True when it was done.
async function finish(r, errorId) {
  $(errorId).textContent = r.ok ? '' : problemText(r.data);
  if (!r.ok) return false;
  showReceipt(r.data);
  if (state.member) await reloadMember();
  refreshStatus();
  return true;
}

function showReceipt(data) {
  const lines = [];
  if (data.receipt_id) lines.push(data.receipt_id);
  for (const l of data.receipt || []) lines.push(l);
  $('receipt').textContent = lines.join('\n');
  $('receipt-dialog').showModal();
  $('receipt-print').focus();
}

async function redeem(rw) {
  const m = state.member;
  if (!await confirmAction(t('redeem_confirm', {points: rw.points, member: m.name || m.member_id, reward: rw.name}))) return;
  const r = await write('/v1/redeem', {member_id: m.member_id, reward: rw.reward});
  if (!await finish(r, 'action-error')) await renderRewards();
}

async function topUp(ev) {
  ev.preventDefault();
  const amount = parseYuan($('topup-amount').value);
  if (!amount) {
    $('action-error').textContent = t('bad_amount');
    return;
  }
  const m = state.member;
  if (!await confirmAction(t('top_up_confirm', {amount: money(amount, m.stored_value.currency), member: m.name || m.member_id}))) return;
  const r = await write('/v1/transactions', {member_id: m.member_id, event: 'top_up', amount});
  if (await finish(r, 'action-error')) $('topup-amount').value = '';
}

// --- enrol a member, record an activity -----------------------------------

function openEnrol() {
  $('enrol-form').reset();
  $('enrol-error').textContent = '';
  $('enrol-dialog').showModal();
  $('enrol-phone').focus();
}

async function enrol(ev) {
  ev.preventDefault();
  const body = {phone: $('enrol-phone').value.trim()};
  if ($('enrol-name').value.trim()) body.name = $('enrol-name').value.trim();
  if ($('enrol-birthday').value) body.birthday = $('enrol-birthday').value;
  if ($('enrol-referrer').value.trim()) body.referred_by = $('enrol-referrer').value.trim();
  const r = await write('/v1/members', body);
  if (!r.ok) {
    $('enrol-error').textContent = problemText(r.data);
    return;
  }
  $('enrol-dialog').close();
  state.member = r.data.member;
  renderMember();
  await renderRewards();
  showReceipt(r.data);
  refreshStatus();
}

// The program's tasks (GET /v1/program), for the activity form.
async function loadActivities() {
  const r = await api('GET', '/v1/program');
  const select = $('activity-name');
  select.replaceChildren();
  const names = r.ok ? r.data.activities : [];
  for (const a of names) select.append(h('option', {value: a}, a));
  $('activity-kind').querySelector('[value=activity]').disabled = names.length === 0;
}

async function recordActivity(ev) {
  ev.preventDefault();
  const kind = $('activity-kind').value;
  const m = state.member;
  const body = {member_id: m.member_id, event: kind};
  let what = $('activity-kind').selectedOptions[0].textContent;
  if (kind === 'activity') {
    body.activity = $('activity-name').value;
    what += ' · ' + body.activity;
  }
  if (!await confirmAction(t('activity_confirm', {member: m.name || m.member_id, what}))) return;
  await finish(await write('/v1/transactions', body), 'action-error');
}

// --- receipts: reprint, and return chosen lines (supervisor) -------------

async function lookUpReceipt(ev) {
  if (ev) ev.preventDefault();
  const id = $('receipt-id').value.trim().toUpperCase();
  const box = $('receipt-found');
  box.replaceChildren();
  if (!id) return;
  const r = await api('GET', '/v1/transactions/' + encodeURIComponent(id));
  if (!r.ok) {
    $('receipt-error').textContent = problemText(r.data);
    return;
  }
  $('receipt-error').textContent = '';
  const tx = r.data;
  box.append(h('p', {}, h('strong', {}, tx.receipt_id), ' ',
      h('button', {type: 'button', onclick: () => showReceipt(tx)}, t('reprint'))));
  if (tx.voided_by) {
    box.append(h('p', {}, t('voided')));
    return;
  }
  const lines = (tx.returnable || []).filter((l) => l.left > 0);
  if (!tx.returnable) return;
  if (!lines.length) {
    box.append(h('p', {}, t('nothing_left')));
    return;
  }
  if (state.staff.role !== 'supervisor') {
    box.append(h('p', {class: 'sub'}, t('supervisor_needed')));
    return;
  }
  const form = h('form', {class: 'return-form', autocomplete: 'off'});
  for (const l of lines) {
    const fid = 'ret-line-' + l.line;
    form.append(h('label', {for: fid}, t('return_qty', {name: l.name, left: l.left}) +
        ' · ' + money(l.list)),
    h('input', {id: fid, type: 'number', min: '0', max: String(l.left), step: '1', value: '0',
      inputmode: 'numeric', 'data-line': String(l.line)}));
  }
  form.append(h('button', {type: 'submit', class: 'primary'}, t('return_it')));
  form.addEventListener('submit', (e) => takeBack(e, tx.receipt_id, form));
  box.append(form);
}

async function takeBack(ev, receiptId, form) {
  ev.preventDefault();
  const lines = [];
  for (const input of form.querySelectorAll('input[data-line]')) {
    const q = Number(input.value);
    if (Number.isInteger(q) && q > 0) lines.push({line: Number(input.dataset.line), quantity: q});
  }
  if (!lines.length) {
    $('receipt-error').textContent = t('return_none');
    return;
  }
  if (!await confirmAction(t('return_confirm', {id: receiptId}))) return;
  const r = await write('/v1/returns', {receipt_id: receiptId, lines});
  if (await finish(r, 'receipt-error')) await lookUpReceipt();
}

function selectTab(tab) {
  for (const b of document.querySelectorAll('[role=tab]')) {
    const on = b === tab;
    b.setAttribute('aria-selected', String(on));
    b.tabIndex = on ? 0 : -1;
    $(b.getAttribute('aria-controls')).hidden = !on;
  }
}

// --- start -----------------------------------------------------------------

function switchLang() {
  setLang(lang() === 'en' ? 'zh-CN' : 'en');
  localStorage.setItem('counter-lang', lang());
  $('lang').textContent = lang() === 'en' ? '中文' : 'English';
  $('lang').lang = lang() === 'en' ? 'zh-CN' : 'en';
  if (state.staff) $('who').textContent = state.staff.name + ' (' + t(state.staff.role) + ')';
  if (state.member) renderMember();
  if (state.member) renderRewards();
  refreshStatus();
}

async function start() {
  if (localStorage.getItem('counter-lang') === 'en') switchLang();
  else setLang('zh-CN');
  $('signin-form').addEventListener('submit', signIn);
  $('find-form').addEventListener('submit', find);
  $('topup-form').addEventListener('submit', topUp);
  $('receipt-form').addEventListener('submit', lookUpReceipt);
  $('enrol-open').addEventListener('click', openEnrol);
  $('enrol-cancel').addEventListener('click', () => $('enrol-dialog').close());
  $('enrol-form').addEventListener('submit', enrol);
  $('activity-form').addEventListener('submit', recordActivity);
  $('activity-kind').addEventListener('change', () => {
    $('activity-name-row').hidden = $('activity-kind').value !== 'activity';
  });
  $('signout').addEventListener('click', signOut);
  $('lang').addEventListener('click', switchLang);
  $('receipt-close').addEventListener('click', () => $('receipt-dialog').close());
  $('receipt-print').addEventListener('click', () => window.print());
  $('receipt-dialog').addEventListener('close', () => $('find').focus());
  for (const tab of document.querySelectorAll('[role=tab]')) {
    tab.addEventListener('click', () => selectTab(tab));
    tab.addEventListener('keydown', (e) => {
      const tabs = [...document.querySelectorAll('[role=tab]')];
      const i = tabs.indexOf(tab);
      if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
        const next = tabs[(i + (e.key === 'ArrowRight' ? 1 : tabs.length - 1)) % tabs.length];
        selectTab(next);
        next.focus();
      }
    });
  }
  setInterval(refreshStatus, 5000);
  // Already signed in (a reload): the session answers with the CSRF token.
  const r = await api('GET', '/session');
  if (r.ok) {
    state.csrf = r.data.csrf;
    state.staff = r.data.staff;
    showDesk();
  } else {
    signedOut('');
  }
}

start();
